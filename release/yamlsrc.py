"""YAML loading that remembers where every value came from.

:func:`load_with_lines` parses a YAML document with PyYAML's safe loader and returns the plain
Python data plus a map ``loc -> line`` (1-based) for every mapping key and sequence item, where
``loc`` is the tuple of keys/indexes leading to the value, as in a pydantic error ``loc``. So an
error found anywhere (by pydantic or by the policy compiler) can be reported with its line.

Duplicate keys (which PyYAML silently resolves to the last one) and merge keys (``<<``) are
rejected: in a release policy, a silently overridden line is a leak or a silent withhold.

Hostile or broken text is refused with a line, never with another exception or a hang: documents longer
than :data:`MAX_CHARS`, nested deeper than :data:`MAX_DEPTH`, expanding (through aliases) to more than
:data:`MAX_VALUES` values ("billion laughs") or holding an alias of an enclosing node; characters YAML
forbids; scalars the safe constructors reject (``2024-13-45``, a 5,000-digit integer, ``!!python/...``).
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["Loc", "LineMap", "YamlSourceError", "load_with_lines", "MAX_CHARS", "MAX_DEPTH", "MAX_VALUES"]

Loc = tuple[Any, ...]

#: Longest document accepted, in characters (the shipped policies have ~15,000).
MAX_CHARS = 1_000_000
#: Deepest nesting of mappings and sequences accepted (the shipped policies nest 9 deep).
MAX_DEPTH = 64
#: Most values a document may hold, aliases expanded (the shipped policies have ~170).
MAX_VALUES = 20_000


class YamlSourceError(ValueError):
    """The text is not a usable YAML document; ``line`` is 1-based (None when unknown), ``loc`` the path."""

    def __init__(self, line: int | None, loc: Loc, message: str):
        super().__init__(message)
        self.line = line
        self.loc = loc
        self.message = message


class LineMap:
    """Lines of the values of a YAML document, by loc (tuple of keys and indexes)."""

    def __init__(self) -> None:
        self._lines: dict[Loc, int] = {(): 1}

    def record(self, loc: Loc, line: int) -> None:
        self._lines[loc] = line

    def exact(self, loc: Loc) -> int | None:
        return self._lines.get(tuple(loc))

    def line(self, loc: Loc) -> int:
        """Line of ``loc`` or of its closest recorded ancestor (1 for the document)."""
        loc = tuple(loc)
        while loc not in self._lines:
            loc = loc[:-1]
        return self._lines[loc]

    def known_prefix(self, loc: Loc) -> Loc:
        """The longest prefix of ``loc`` that names a value present in the document."""
        loc = tuple(loc)
        while loc and loc not in self._lines:
            loc = loc[:-1]
        return loc


class _Loader(yaml.SafeLoader):
    """The safe loader, composing no deeper than :data:`MAX_DEPTH` (PyYAML's composer recurses per level) and
    no more than :data:`MAX_VALUES` nodes (so a long document is refused before it is all parsed)."""

    def __init__(self, text: str):
        super().__init__(text)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent, index):
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH or self._nodes > MAX_VALUES:
                mark = self.peek_event().start_mark
                what = (f"nested deeper than {MAX_DEPTH} levels" if self._depth > MAX_DEPTH
                        else f"more than {MAX_VALUES} values")
                raise YamlSourceError(mark.line + 1, (), what)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_with_lines(text: str) -> tuple[Any, LineMap]:
    """Parse one YAML document; returns ``(data, lines)``. Raises :class:`YamlSourceError`."""
    if len(text) > MAX_CHARS:
        raise YamlSourceError(None, (), f"document has {len(text)} characters, more than {MAX_CHARS}")
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow (NUL, other controls)
        raise YamlSourceError(_line_at(text, getattr(exc, "position", None)), (),
                              f"invalid YAML: {str(exc).splitlines()[0]}") from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            problem = exc.problem or str(exc)
            if exc.context:
                problem = f"{exc.context}; {problem}"
            raise YamlSourceError(line, (), f"invalid YAML: {problem}") from None
        except yaml.YAMLError as exc:
            raise YamlSourceError(None, (), f"invalid YAML: {exc}") from None
        lines = LineMap()
        if node is None:
            return None, lines
        return _build(loader, node, (), lines, _Budget()), lines
    finally:
        loader.dispose()


def _line_at(text: str, position: int | None) -> int | None:
    return None if position is None else text.count("\n", 0, position) + 1


class _Budget:
    """What one document may still expand to, and the collections being built (an alias of one of them is
    a cycle)."""

    def __init__(self) -> None:
        self.values = 0
        self.open: set[int] = set()


def _scalar(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except Exception as exc:  # noqa: BLE001 - PyYAML's constructors raise many kinds on odd or tagged scalars
        # (a date 2024-13-45, a 5,000-digit integer, !!python/..., !!timestamp on a non-date, !!binary on text)
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlSourceError(node.start_mark.line + 1, loc,
                              f"invalid value {str(node.value)[:60]!r}: {problem}"[:300]) from None


def _build(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, lines: LineMap, budget: _Budget) -> Any:
    budget.values += 1
    if budget.values > MAX_VALUES:
        raise YamlSourceError(node.start_mark.line + 1, loc,
                              f"more than {MAX_VALUES} values with its aliases expanded")
    if len(loc) > MAX_DEPTH:
        raise YamlSourceError(node.start_mark.line + 1, loc, f"nested deeper than {MAX_DEPTH} levels (through aliases)")
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if id(node) in budget.open:
            raise YamlSourceError(node.start_mark.line + 1, loc, "alias of an enclosing value (a recursive document)")
        budget.open.add(id(node))
        try:
            return _collection(loader, node, loc, lines, budget)
        finally:
            budget.open.discard(id(node))
    return _scalar(loader, node, loc)


def _collection(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, lines: LineMap, budget: _Budget) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlSourceError(key_node.start_mark.line + 1, loc,
                                      "YAML merge keys (<<) are not supported; write the entries out")
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSourceError(key_node.start_mark.line + 1, loc, "mapping keys must be plain scalars")
            key = _scalar(loader, key_node, loc)
            if isinstance(key, (list, dict)) or key is None:
                raise YamlSourceError(key_node.start_mark.line + 1, loc, f"invalid mapping key {key_node.value!r}")
            key_loc = loc + (key,)
            if key in result:
                first = lines.exact(key_loc)
                raise YamlSourceError(key_node.start_mark.line + 1, key_loc,
                                      f"duplicate key {key!r} (first at line {first})")
            lines.record(key_loc, key_node.start_mark.line + 1)
            result[key] = _build(loader, value_node, key_loc, lines, budget)
        return result
    items = []
    for index, item in enumerate(node.value):
        item_loc = loc + (index,)
        lines.record(item_loc, item.start_mark.line + 1)
        items.append(_build(loader, item, item_loc, lines, budget))
    return items
