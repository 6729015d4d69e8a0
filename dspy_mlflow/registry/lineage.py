"""The version tree of a registered model: parents, children, what each version is."""

from __future__ import annotations

from dataclasses import dataclass, field

from dspy_mlflow import names
from dspy_mlflow.registry import versions as C
from dspy_mlflow.registry.prompts import prompts_of
from dspy_mlflow.tracking import store


@dataclass
class Node:
    version: str
    semver: str
    parent: str | None  # "models:/NAME/V" as recorded, or None for a root
    optimizer: str
    model: str
    strategy: str
    scores: dict[str, str]
    aliases: list[str]
    stage: str
    source_run: str
    prompts: dict[str, str] = field(default_factory=dict)  # predictor -> prompts:/NAME.P/N
    parent_version: str | None = None  # the parent's number when it is a version of the same model
    children: list[str] = field(default_factory=list)


def lineage(name: str, *, tracking_uri: str | None = None) -> dict[str, Node]:
    """Every version of ``name`` as a Node, keyed by version number (oldest first)."""
    c = store.client(tracking_uri)
    nodes: dict[str, Node] = {}
    for mv in C.all_versions(c, name):
        t = mv.tags
        node = Node(
            version=str(mv.version),
            semver=t.get(names.VERSION_SEMVER, "-"),
            parent=t.get(names.VERSION_PARENT) or None,
            optimizer=t.get(names.VERSION_OPTIMIZER, "-"),
            model=t.get(names.VERSION_MODEL, "-"),
            strategy=t.get(names.VERSION_STRATEGY, "-"),
            scores={k: t.get(k, "-") for k in names.VERSION_SCORE_TAGS},
            aliases=list(mv.aliases),
            stage=mv.current_stage or "None",
            source_run=t.get(names.VERSION_SOURCE_RUN, mv.run_id or "-"),
            prompts=prompts_of(t),
        )
        prefix = f"models:/{name}/"
        if node.parent and node.parent.startswith(prefix) and node.parent[len(prefix):].isdigit():
            node.parent_version = node.parent[len(prefix):]
        nodes[node.version] = node
    for node in nodes.values():
        pv = node.parent_version
        if pv in nodes:
            nodes[pv].children.append(node.version)
    return nodes


def _line(node: Node) -> str:
    marks = ""
    if node.aliases:
        marks += " @" + ",@".join(node.aliases)
    parts = [
        f"v{node.version}",
        node.semver,
        f"optimizer={node.optimizer}",
        f"model={node.model}",
        f"strategy={node.strategy}",
        f"test/score={node.scores['test/score']}",
        f"dev/score={node.scores['dev/score']}",
        f"cost=${node.scores['cost/total_usd']}",
    ]
    if node.stage and node.stage != "None":  # stages are deprecated: shown only when one is set
        parts.append(f"stage={node.stage}")
    if node.prompts:
        parts.append("prompts=" + ",".join(uri.removeprefix("prompts:/") for uri in node.prompts.values()))
    return "  ".join(parts) + marks


def format_lineage(name: str, nodes: dict[str, Node]) -> str:
    """The tree as text: roots first, each child indented under its parent."""
    prod = next((n.version for n in nodes.values() if names.PRODUCTION in n.aliases), None)
    lines = [f"{name}: {len(nodes)} version(s), production: " + (f"v{prod}" if prod else "none")]
    roots = [n for n in nodes.values() if n.parent_version not in nodes]

    def walk(node: Node, prefix: str, last: bool, top: bool) -> None:
        if top:
            extra = f"  (parent {node.parent})" if node.parent else "  (root)"
            lines.append(_line(node) + extra)
            child_prefix = ""
        else:
            lines.append(prefix + ("└── " if last else "├── ") + _line(node))
            child_prefix = prefix + ("    " if last else "│   ")
        kids = [nodes[k] for k in node.children]
        for i, kid in enumerate(kids):
            walk(kid, child_prefix, i == len(kids) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    return "\n".join(lines)
