"""YAML loading that remembers where every value came from.

:func:`load_with_lines` parses a YAML document with PyYAML's safe loader and returns the plain
Python data plus a map ``loc -> line`` (1-based) for every mapping key and sequence item, where
``loc`` is the tuple of keys/indexes leading to the value, as in a pydantic error ``loc``. So an
error found anywhere (by pydantic or by the policy compiler) can be reported with its line.

Duplicate keys (which PyYAML silently resolves to the last one) and merge keys (``<<``) are
rejected: in a release policy, a silently overridden line is a leak or a silent withhold.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["Loc", "LineMap", "YamlSourceError", "load_with_lines"]

Loc = tuple[Any, ...]


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


def load_with_lines(text: str) -> tuple[Any, LineMap]:
    """Parse one YAML document; returns ``(data, lines)``. Raises :class:`YamlSourceError`."""
    loader = yaml.SafeLoader(text)
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
        return _build(loader, node, (), lines), lines
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, lines: LineMap) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlSourceError(key_node.start_mark.line + 1, loc,
                                      "YAML merge keys (<<) are not supported; write the entries out")
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSourceError(key_node.start_mark.line + 1, loc, "mapping keys must be plain scalars")
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)) or key is None:
                raise YamlSourceError(key_node.start_mark.line + 1, loc, f"invalid mapping key {key_node.value!r}")
            key_loc = loc + (key,)
            if key in result:
                first = lines.exact(key_loc)
                raise YamlSourceError(key_node.start_mark.line + 1, key_loc,
                                      f"duplicate key {key!r} (first at line {first})")
            lines.record(key_loc, key_node.start_mark.line + 1)
            result[key] = _build(loader, value_node, key_loc, lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            item_loc = loc + (index,)
            lines.record(item_loc, item.start_mark.line + 1)
            items.append(_build(loader, item, item_loc, lines))
        return items
    return loader.construct_object(node, deep=True)
