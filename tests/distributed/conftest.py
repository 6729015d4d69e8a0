"""Real components on loopback, one of each per module: PostgreSQL (initdb in a temp dir, run
as the ``postgres`` user), ``mlflow server`` on it with proxied artifacts, and a Ray cluster
of a head and one more node started with ``ray start`` from different working directories
(own temp dirs, own HOME, own DSPy cache: nothing shared but the network).

Everything started here is stopped in the fixtures' finalizers, by process id (Ray's
processes are found by the temp dir in their command line, never by name).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, timeout: float = 90.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} not ready after {timeout} s")


# -- PostgreSQL ----------------------------------------------------------------
@dataclass
class Postgres:
    data: Path
    port: int

    @property
    def log(self) -> Path:
        return self.data / "server.log"

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def createdb(self, name: str) -> str:
        subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
                       check=True, capture_output=True, text=True, timeout=60)
        return self.url(name)

    def errors(self, *needles: str, database: str | None = None) -> list[str]:
        """ERROR lines holding one of ``needles`` (in ``database`` only, if given), each with its
        DETAIL line (the duplicated key)."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        out = []
        for i, line in enumerate(lines):
            if database is not None and f" db={database} " not in line:
                continue
            if "ERROR:" in line and any(n in line for n in needles):
                detail = lines[i + 1] if i + 1 < len(lines) and "DETAIL:" in lines[i + 1] else ""
                out.append(f"{line} | {detail.split('DETAIL:', 1)[-1].strip()}")
        return out


def _as_postgres(cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["su", "postgres", "-c", cmd], check=True, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def postgres():
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 is not installed (apt-get install -y postgresql-15; .ci/run does)")
    data = Path(tempfile.mkdtemp(prefix="dspy-mlflow-pg-"))  # not under pytest's root-only tmp dir
    shutil.chown(data, "postgres", "postgres")
    port = free_port()
    _as_postgres(f"{PG_BIN}/initdb -D {data}/db -A trust -U postgres")
    pg = Postgres(data, port)
    with open(data / "db" / "postgresql.conf", "a") as conf:  # each log line names its database
        conf.write("\nlog_line_prefix = '%m [%p] db=%d '\n")
    _as_postgres(f"{PG_BIN}/pg_ctl -D {data}/db -l {pg.log} -w "
                 f"-o '-p {port} -k {data} -h 127.0.0.1 -c max_connections=200' start")
    try:
        yield pg
    finally:
        subprocess.run(["su", "postgres", "-c", f"{PG_BIN}/pg_ctl -D {data}/db -m immediate -w stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


# -- mlflow server -----------------------------------------------------------------
@dataclass
class TrackingServer:
    uri: str
    artifacts: Path
    proc: subprocess.Popen


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    backend = postgres.createdb("mlflow")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env = {k: v for k, v in env.items() if k != "MLFLOW_TRACKING_URI"}
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed in the finalizer
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
         "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200, "mlflow server",
              timeout=180, proc=proc)
        yield TrackingServer(uri, root / "artifacts", proc)
    finally:
        with_group = os.getpgid(proc.pid) if proc.poll() is None else None
        if with_group:
            os.killpg(with_group, signal.SIGTERM)  # the server and its uvicorn workers: its own session
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


# -- Ray cluster ---------------------------------------------------------------------
def _procs() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, command line) from /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        out[int(entry.name)] = (ppid, cmd)
    return out


def kill_marked(*markers: str) -> int:
    """SIGKILL every process whose command line holds one of ``markers``, and their descendants."""
    procs = _procs()
    doomed = {pid for pid, (_, cmd) in procs.items() if any(m in cmd for m in markers)}
    grew = True
    while grew:
        kids = {pid for pid, (ppid, _) in procs.items() if ppid in doomed} - doomed
        grew = bool(kids)
        doomed |= kids
    doomed.discard(os.getpid())
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(doomed)


@dataclass
class RayCluster:
    address: str
    env: dict[str, str]
    head_dir: Path
    node_dir: Path
    node_manager_port: int
    markers: list[str] = field(default_factory=list)

    def kill_extra_node(self) -> int:
        """Kill the second node's raylet (its workers die with it), as a lost machine."""
        procs = _procs()
        raylets = [pid for pid, (_, cmd) in procs.items()
                   if "raylet" in cmd and f"--node_manager_port={self.node_manager_port}" in cmd]
        for pid in raylets:
            os.kill(pid, signal.SIGKILL)
        return len(raylets)


def ray_env(home: Path, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    env.update({"HOME": str(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN": token, "DSPY_CACHEDIR": str(home / ".dspy_cache"),
                "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"})
    return env


def _ray_start(args: list[str], cwd: Path, env: dict) -> None:
    ray = str(Path(sys.executable).with_name("ray"))
    proc = subprocess.run([ray, "start", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def ray_cluster():
    """A head (1 CPU) and one more node (1 CPU) on 127.0.0.1, each from a folder of its own."""
    root = Path(tempfile.mkdtemp(prefix="dspy-ray-"))  # short: Ray's socket paths must stay < 108 chars
    head, node = root / "head", root / "node"
    for d in (head, node):
        (d / "tmp").mkdir(parents=True)
    token = secrets.token_hex(32)
    port, client_port, nm_port = free_port(), free_port(), free_port()
    markers = [str(head / "tmp"), str(node / "tmp"), f"--port={client_port}"]
    cluster = RayCluster(f"127.0.0.1:{port}", ray_env(root / "driver", token), head, node, nm_port, markers)
    (root / "driver").mkdir()
    common = ["--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    try:
        _ray_start(["--head", f"--port={port}", f"--ray-client-server-port={client_port}", "--num-cpus=1",
                    "--include-dashboard=false", f"--temp-dir={head / 'tmp'}", *common], head, ray_env(head, token))
        _ray_start([f"--address={cluster.address}", "--num-cpus=1", f"--node-manager-port={nm_port}",
                    f"--temp-dir={node / 'tmp'}", *common], node, ray_env(node, token))
        yield cluster
    finally:
        kill_marked(*markers)
        shutil.rmtree(root, ignore_errors=True)
