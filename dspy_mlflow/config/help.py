"""``--help`` read from the conf folders (the user's ./conf and the package's), composing nothing.

Hydra's own help composes the config once per group option; this lists the same groups and
options from the folders, with each option's first comment line and the default marked.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dspy_mlflow.config.entries import search_dirs
from dspy_mlflow.config.paths import conf_dir
from dspy_mlflow.config.schema import RootConfig


def describe(path: Path) -> str:
    """An option's first sentence from its leading comment (no ``@package`` line, no usage example)."""
    words: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            text = line.strip()
            if not text.startswith("#"):
                break
            text = text.lstrip("#").strip()
            if text.startswith("@package"):
                continue
            if not text or text.startswith("python -m"):
                break
            words.append(text.split("   ")[0])
            if "   " in text:
                break
    sentence = " ".join(words).split(". ")[0]
    return sentence.rstrip(" :,.")


def options(dirs: list[Path]) -> dict[str, dict[str, tuple[str, bool]]]:
    """group -> option -> (description, from the user's folder); the first folder wins a name."""
    groups: dict[str, dict[str, tuple[str, bool]]] = {}
    package = conf_dir().resolve()
    for folder in dirs:
        if not folder.is_dir():
            continue
        for group in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "hydra"):
            for path in sorted(group.glob("*.yaml")):
                entries = groups.setdefault(group.name, {})
                if path.stem not in entries:
                    entries[path.stem] = (describe(path), folder.resolve() != package)
    return {g: dict(sorted(o.items())) for g, o in sorted(groups.items())}


def _defaults(primary: dict) -> dict[str, str | None]:
    chosen: dict[str, str | None] = {}
    for entry in primary.get("defaults", []):
        if isinstance(entry, dict):
            chosen.update(entry)
    return chosen


def render() -> str:
    primary = yaml.safe_load((conf_dir() / "config.yaml").read_text(encoding="utf-8"))
    help_cfg = primary.get("hydra", {}).get("help", {})
    defaults = _defaults(primary)
    dirs = search_dirs()
    out = [help_cfg.get("header", "").rstrip(), "", "== Configuration groups ==",
           "Choose one option per group (group=option); * marks the default, (./conf) your own folder's."]
    for group, entries in options(dirs).items():
        out.append(f"\n{group}:")
        width = max(map(len, entries))
        for name, (text, user) in entries.items():
            mark = "*" if defaults.get(group) == name else " "
            out.append(f"  {mark} {name:<{width}}  {text}{'  (./conf)' if user else ''}".rstrip())
    from dataclasses import fields

    sections = [f.name for f in fields(RootConfig)]
    out += ["", "== Config ==",
            "Override any key (section.key=value). Sections: " + ", ".join(sections) + ".",
            "The whole composed config: --cfg job; one section: --cfg job --package model;",
            "with your overrides: --help key=value ...", "", help_cfg.get("footer", "").rstrip()]
    return "\n".join(out)
