"""Hardware facts for MLflow run tags, so local-model runs say what they ran on.

``detect()`` never raises and never imports mlx unless it is installed: every probe is
wrapped, and a probe that fails simply leaves its default ("unknown").
"""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys

from dspy_mlflow import names

TAG_PREFIX = names.HARDWARE_PREFIX
UNKNOWN = "unknown"


def _mlx_installed() -> bool:
    try:
        return (
            importlib.util.find_spec("mlx") is not None and importlib.util.find_spec("mlx.core") is not None
        )
    except Exception:
        return False


def _sysctl(name: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2)
        value = out.stdout.strip()
        return value or None
    except Exception:
        return None


def _cpu_name() -> str | None:
    try:
        if sys.platform.startswith("linux") and os.path.exists("/proc/cpuinfo"):
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    key, _, value = line.partition(":")
                    if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                        return value.strip()
    except Exception:
        pass
    try:
        if sys.platform == "darwin":
            name = _sysctl("machdep.cpu.brand_string")
            if name:
                return name
    except Exception:
        pass
    try:
        return platform.processor() or platform.machine() or None
    except Exception:
        return None


def _total_ram_bytes() -> int | None:
    try:
        if sys.platform == "darwin":
            value = _sysctl("hw.memsize")
            if value:
                return int(value)
    except Exception:
        pass
    try:
        if os.path.exists("/proc/meminfo"):
            with open("/proc/meminfo", encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith("MemTotal:"):
                        return int(line.split()[1]) * 1024
    except Exception:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except Exception:
        return None


def _metal_info() -> dict | None:
    """mx.metal.device_info() when MLX is installed and Metal is available, else None."""
    if not _mlx_installed():
        return None
    try:
        import mlx.core as mx

        metal = getattr(mx, "metal", None)
        if metal is None or not metal.is_available():
            return None
        info = mx.device_info() if hasattr(mx, "device_info") else metal.device_info()
        return dict(info)
    except Exception:
        return None


def _mlx_default_device() -> str | None:
    if not _mlx_installed():
        return None
    try:
        import mlx.core as mx

        return str(mx.default_device())
    except Exception:
        return None


def detect() -> dict[str, str]:
    """Run tags: dspy_mlflow.hw.{backend, device, memory_gb, chip}. Never raises."""
    tags = {
        TAG_PREFIX + "backend": UNKNOWN,
        TAG_PREFIX + "device": UNKNOWN,
        TAG_PREFIX + "memory_gb": UNKNOWN,
        TAG_PREFIX + "chip": UNKNOWN,
    }
    metal = None
    try:
        metal = _metal_info()
    except Exception:
        metal = None
    tags[TAG_PREFIX + "backend"] = "metal" if metal else "cpu"
    try:
        if metal:
            name = metal.get("device_name") or metal.get("architecture")
            tags[TAG_PREFIX + "device"] = str(name) if name else (_mlx_default_device() or UNKNOWN)
        else:
            tags[TAG_PREFIX + "device"] = _cpu_name() or _mlx_default_device() or UNKNOWN
    except Exception:
        pass
    try:
        size = None
        if metal:
            size = metal.get("max_recommended_working_set_size") or metal.get("memory_size")
        if not size:
            size = _total_ram_bytes()
        if size:
            tags[TAG_PREFIX + "memory_gb"] = f"{int(size) / 1024**3:.1f}"
    except Exception:
        pass
    try:
        chip = _sysctl("machdep.cpu.brand_string") if sys.platform == "darwin" else None
        tags[TAG_PREFIX + "chip"] = chip or platform.machine() or UNKNOWN
    except Exception:
        pass
    return tags
