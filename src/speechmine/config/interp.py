"""What ``${...}`` interpolations in a config will do, known before OmegaConf resolves them.

* :func:`check_expansion`: a few hundred bytes of nested interpolations (``b: ${a}${a}``,
  ``c: ${b}${b}`` …) expand exponentially; resolving them would exhaust memory, so every
  value's expanded size is bounded from the raw config first (:data:`MAX_EXPANDED_CHARS`).
* :func:`env_dependent`: the keys whose value comes, directly or through other keys, from an
  environment variable (``${oc.env:...}``: tokens, passwords). ``config.yaml`` keeps their
  interpolation instead of the secret.

References are read from the raw (unresolved) config: ``${a.b}`` absolute, ``${.x}``
relative to the node's parent, ``${oc.env:NAME,default}`` an environment variable; other
resolvers count as their literal text.
"""

from __future__ import annotations

import os
import re
from typing import Any

#: largest expanded length of one config value (characters)
MAX_EXPANDED_CHARS = 1_000_000

_REF = re.compile(r"\$\{([^${}]*)\}")


class ExpansionError(ValueError):
    """A value's interpolations expand beyond :data:`MAX_EXPANDED_CHARS`: ``(key, size)``."""

    def __init__(self, key: str, size: int) -> None:
        super().__init__(f"{key}: its ${{...}} interpolations expand to more than "
                         f"{MAX_EXPANDED_CHARS:,} characters (about {size:,}); nested "
                         "interpolations multiply")
        self.key = key


def _leaves(node: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _leaves(v, f"{path}.{k}" if path else str(k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _leaves(v, f"{path}.{i}" if path else str(i), out)
    out.setdefault(path, node)


def _target(ref: str, path: str) -> str | None:
    """The absolute key a reference names (None for resolvers)."""
    ref = ref.strip()
    if ":" in ref:
        return None
    if not ref.startswith("."):
        return ref
    parent = path.split(".")[:-1]
    dots = len(ref) - len(ref.lstrip("."))
    base = parent[: len(parent) - (dots - 1)] if dots > 1 else parent
    rest = ref.lstrip(".")
    return ".".join([*base, rest]) if rest else ".".join(base)


class _Graph:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.nodes: dict[str, Any] = {}
        _leaves(raw, "", self.nodes)
        self.size_memo: dict[str, int] = {}
        self.env_memo: dict[str, bool] = {}

    def _children(self, path: str) -> list[str]:
        prefix = path + "."
        return [p for p in self.nodes if p.startswith(prefix) and "." not in p[len(prefix):]]

    def size(self, path: str, visiting: frozenset[str] = frozenset()) -> int:
        if path in self.size_memo:
            return self.size_memo[path]
        if path in visiting or path not in self.nodes:
            return 0  # a cycle or a missing key: OmegaConf reports those itself
        value = self.nodes[path]
        seen = visiting | {path}
        if isinstance(value, (dict, list)):
            total = sum(self.size(c, seen) for c in self._children(path))
        elif isinstance(value, str):
            total = len(_REF.sub("", value))
            for ref in _REF.findall(value):
                target = _target(ref, path)
                if target is None:
                    total += self._resolver_size(ref)
                else:
                    total += self.size(target, seen)
                if total > MAX_EXPANDED_CHARS:
                    break
        else:
            total = len(str(value))
        self.size_memo[path] = total
        return total

    @staticmethod
    def _resolver_size(ref: str) -> int:
        name, _, args = ref.partition(":")
        if name.strip() == "oc.env":
            var, _, default = args.partition(",")
            return len(os.environ.get(var.strip(), default))
        return len(ref)

    def from_env(self, path: str, visiting: frozenset[str] = frozenset()) -> bool:
        if path in self.env_memo:
            return self.env_memo[path]
        if path in visiting or path not in self.nodes:
            return False
        value = self.nodes[path]
        seen = visiting | {path}
        found = False
        if isinstance(value, (dict, list)):
            found = any(self.from_env(c, seen) for c in self._children(path))
        elif isinstance(value, str):
            for ref in _REF.findall(value):
                target = _target(ref, path)
                found = (target is None and ref.strip().startswith("oc.env")) or (
                    target is not None and self.from_env(target, seen))
                if found:
                    break
        self.env_memo[path] = found
        return found


def check_expansion(raw: dict[str, Any]) -> None:
    """Raise :class:`ExpansionError` naming the first key whose value expands too far."""
    graph = _Graph(raw)
    for path, value in graph.nodes.items():
        # only values that interpolate can grow; a long list written out is just long
        if isinstance(value, str) and "${" in value and graph.size(path) > MAX_EXPANDED_CHARS:
            raise ExpansionError(path, graph.size(path))


def env_dependent(raw: dict[str, Any]) -> dict[str, Any]:
    """``{key: raw value}`` of every leaf whose value comes from an environment variable."""
    graph = _Graph(raw)
    return {p: v for p, v in graph.nodes.items()
            if p and not isinstance(v, (dict, list)) and graph.from_env(p)}
