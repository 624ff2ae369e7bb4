"""Write a threshold into a preset YAML, changing nothing else where possible.

The value is put where the preset sets its threshold — each literal number among
``mine_threshold``, ``mine.threshold`` and stopes' ``mine_sentences.config.mine_threshold`` /
``score_min`` and ``mine_indexes.config.mine_threshold`` (an interpolation such as
``${mine_threshold}`` is left alone: it follows the top-level key) — and, when the preset
sets none, as a new top-level ``mine_threshold`` line at the end. Values are replaced in
the text, at the positions YAML's parser reports, so comments, order, quoting and blank
lines stay as they were. Only a preset whose threshold sits where a text edit cannot reach
it safely (a value spread over lines, a top level written as a flow mapping) is rewritten
whole from its parsed data: its comments are then lost, and :func:`write_threshold` says
so. The result is checked by loading it: the threshold it yields must be the one written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..io.atomic import atomic_open
from .core import TuneError

__all__ = ["THRESHOLD_KEYS", "Written", "write_threshold", "set_threshold_text"]

#: where a preset may set the threshold (dotted paths), in the order speechmine reads them
THRESHOLD_KEYS = ("mine_threshold", "mine_indexes.config.mine_threshold",
                  "mine_sentences.config.mine_threshold", "mine_sentences.config.score_min",
                  "mine.threshold")


#: speechmine's own keys (set whatever they hold)
_OWN_KEYS = ("mine_threshold", "mine.threshold")


@dataclass(frozen=True)
class Written:
    """What :func:`write_threshold` did: the keys it set (``added`` when it added the
    top-level key) and whether comments survived."""

    path: str
    keys: tuple[str, ...]
    added: bool
    comments_kept: bool


def _value_nodes(root: yaml.Node) -> dict[str, yaml.ScalarNode]:
    """Scalar nodes of :data:`THRESHOLD_KEYS` found in ``root`` (a mapping node)."""
    out: dict[str, yaml.ScalarNode] = {}
    for key in THRESHOLD_KEYS:
        node: yaml.Node | None = root
        for part in key.split("."):
            if not isinstance(node, yaml.MappingNode):
                node = None
                break
            node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode)
                         and k.value == part), None)
        if isinstance(node, yaml.ScalarNode):
            out[key] = node
    return out


def _is_literal(node: yaml.ScalarNode) -> bool:
    """A number (or ``???``, or empty) to replace; interpolations follow other keys."""
    text = node.value.strip()
    if "${" in text:
        return False
    if text in ("???", "", "null", "~"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def set_threshold_text(text: str, threshold: float, comment: str = "") -> tuple[str, Written]:
    """``text`` (a preset) with its threshold set to ``threshold`` (see module doc);
    ``comment`` goes after an added line. ``Written.path`` is empty here."""
    value = repr(float(threshold))
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise TuneError(f"the preset is not valid YAML: {exc}") from None
    if root is None:
        root = yaml.MappingNode("tag:yaml.org,2002:map", [])
    if not isinstance(root, yaml.MappingNode):
        raise TuneError("the preset's top level is not a mapping")
    found = _value_nodes(root)
    # the preset's own keys are set whatever they hold; stopes' blocks only where they hold a
    # number (``${mine_threshold}`` follows the top-level key)
    nodes = {k: n for k, n in found.items() if k in _OWN_KEYS or _is_literal(n)}
    block_style = not root.flow_style and all(
        n.start_mark.line == n.end_mark.line and n.style in (None, "", "'", '"')
        for n in nodes.values())
    if not block_style:
        return _rewrite(text, threshold, nodes)
    lines = text.splitlines(keepends=True)
    # replace from the end of the text, so earlier positions stay valid
    for node in sorted(nodes.values(), key=lambda n: n.start_mark.index, reverse=True):
        line = lines[node.start_mark.line]
        a, b = node.start_mark.column, node.end_mark.column
        lines[node.start_mark.line] = line[:a] + value + line[b:]
    added = not any(k in found for k in _OWN_KEYS)
    if added:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(f"mine_threshold: {value}" + (f"  # {comment}" if comment else "") + "\n")
    keys = tuple(nodes) + (("mine_threshold",) if added else ())
    return "".join(lines), Written("", keys, added, True)


def _rewrite(text: str, threshold: float, nodes: dict[str, Any]) -> tuple[str, Written]:
    """The preset rebuilt from its data (comments lost) with the threshold set."""
    data = yaml.safe_load(text) or {}
    keys = tuple(nodes) or ("mine_threshold",)
    for key in keys:
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = float(threshold)
    out = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return out, Written("", keys, not nodes, False)


def write_threshold(preset: str | Path, out: str | Path, threshold: float,
                    comment: str = "") -> Written:
    """Write ``preset`` with its threshold set to ``threshold`` to ``out`` (atomically; may
    be ``preset`` itself)."""
    text = Path(preset).read_text(encoding="utf-8")
    new, written = set_threshold_text(text, threshold, comment)
    with atomic_open(out, "w") as fh:
        fh.write(new)
    return Written(str(out), written.keys, written.added, written.comments_kept)
