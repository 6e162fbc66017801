"""Strict parsing of one line of JSON text (the JSON form of a model), safe on hostile input.

:func:`loads_strict` is :func:`json.loads` with the checks that make one bad line one error,
never a crash and never a value the models or the output cannot take:

* nesting is bounded (:data:`MAX_DEPTH`) *before* :mod:`json` parses, by a linear scan of the
  brackets outside strings, so a line of ``[[[[...`` cannot raise :class:`RecursionError`;
* ``NaN``, ``Infinity``, ``-Infinity`` and numbers that overflow a double (``1e999``) are refused,
  with the path of the field they stand at;
* integers longer than :data:`MAX_INT_DIGITS` digits are refused (Python's own limit would raise
  a :class:`ValueError` deep in the parser; no Avro ``long`` needs more than 19 digits);
* strings (keys included) holding a lone surrogate (``"\\ud800"``) are refused: they are not
  Unicode, so they could not be written as UTF-8 (Avro, the output) later;
* duplicate keys in an object are refused (which one wins would be up to the reader).

Every problem raises :class:`JsonTextError`, whose ``problems`` are ``(path, message)`` pairs:
``path`` is the list of keys / indexes from the top-level value, or empty for the line as a whole
(then the message starts with ``invalid JSON:``).
Messages never contain input values, only structure (key names of duplicates, positions).
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_INT_DIGITS", "JsonTextError", "loads_strict", "check_depth"]

#: Deepest nesting of arrays/objects accepted (the deepest record, with its envelope, needs 5).
MAX_DEPTH = 64
#: Longest integer literal accepted, in digits.
MAX_INT_DIGITS = 64

# A whole string literal, up to its closing quote or, unterminated, to the end of the text (so the
# scan never restarts inside a string and stays linear); then anything that is not a bracket.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonTextError(ValueError):
    """The text is not acceptable JSON; ``problems`` lists ``(path, message)``, path a list of keys/indexes."""

    def __init__(self, problems: list[tuple[list[str | int], str]]):
        self.problems = problems
        super().__init__("; ".join(_describe(path, message) for path, message in problems))


def _describe(path: list[str | int], message: str) -> str:
    return f"{'.'.join(map(str, path))}: {message}" if path else message


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`JsonTextError` when arrays/objects in ``text`` nest deeper than ``limit``.

    Brackets inside strings do not count. Linear in the length of ``text``, no recursion.
    """
    if text.count("[") + text.count("{") <= limit:  # fast path: not enough brackets to go too deep
        return
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit:
        raise JsonTextError([([], f"invalid JSON: nested deeper than {limit} levels of arrays/objects")])


class _Bad:
    """Stands, in the parsed value, where a refused literal was; collected with its path afterwards."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


class _DuplicateKey(Exception):
    pass


def _constant(name: str) -> _Bad:
    return _Bad(f"{name} is not valid JSON (numbers must be finite)")


def _float(text: str) -> float | _Bad:
    value = float(text)
    return value if math.isfinite(value) else _Bad("number out of range of a double (not finite)")


def _int(text: str) -> int | _Bad:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _Bad(f"integer with more than {MAX_INT_DIGITS} digits")
    return int(text)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def loads_strict(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``text`` as one JSON value, strictly (see the module doc); raise :class:`JsonTextError`."""
    check_depth(text, max_depth)
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_constant, parse_float=_float,
                           parse_int=_int)
    except _DuplicateKey as exc:
        # The key is a field name (structure), not a value: safe to show - unless it is not Unicode.
        key = str(exc) if not _SURROGATE.search(str(exc)) else "<not Unicode>"
        raise JsonTextError([([], f"invalid JSON: duplicate key {key!r} in an object")]) from None
    except json.JSONDecodeError as exc:
        # JSONDecodeError's message names the position, never the content.
        raise JsonTextError([([], f"invalid JSON: {exc.msg} at column {exc.colno}")]) from None
    except (ValueError, RecursionError) as exc:  # not expected after the checks above; never echo the text
        raise JsonTextError([([], f"invalid JSON: {type(exc).__name__}")]) from None
    problems = _problems(value)
    if problems:
        raise JsonTextError([(path, message if path else f"invalid JSON: {message}") for path, message in problems])
    return value


def _problems(value: Any) -> list[tuple[list[str | int], str]]:
    """(path, message) of every refused literal and non-Unicode string in ``value``, in document order."""
    out: list[tuple[list[str | int], str]] = []
    stack: list[tuple[list[str | int], Any]] = [([], value)]  # iterative: depth is bounded, but no recursion anyway
    while stack:
        path, node = stack.pop()
        if isinstance(node, _Bad):
            out.append((path, node.message))
        elif isinstance(node, str):
            if _SURROGATE.search(node):
                out.append((path, "string is not valid Unicode (lone surrogate escape)"))
        elif isinstance(node, dict):
            children = []
            for key, child in node.items():
                if _SURROGATE.search(key):
                    out.append((path, "key is not valid Unicode (lone surrogate escape)"))
                    key = "<not Unicode>"
                children.append(([*path, key], child))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([([*path, index], child) for index, child in enumerate(node)]))
    return out
