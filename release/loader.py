"""Policy file -> validated :class:`~release.spec.PolicySpec`, with the line of every key.

Reading, decoding, YAML parsing (:mod:`release.yamlsrc`) and the structural validation of pydantic;
every problem is reported as :class:`PolicyError` with file, line and dotted field path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from release.errors import PolicyError, display_path
from release.spec import PolicySpec
from release.yamlsrc import MAX_CHARS, LineMap, YamlSourceError, load_with_lines

__all__ = ["LoadedPolicy", "read_policy", "dotted", "MAX_BYTES"]

#: Largest policy file read, in bytes (the shipped policies have ~15,000).
MAX_BYTES = MAX_CHARS


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy file that parsed and fits :class:`PolicySpec` (not yet checked against the schemas)."""

    path: Path
    #: The path as error messages show it (relative to the working directory when below it).
    shown: str
    #: First 16 hex digits of the SHA-256 of the file's bytes.
    version: str
    spec: PolicySpec
    lines: LineMap


def read_policy(path: Path | str) -> LoadedPolicy:
    """Read and validate one policy file; raises :class:`PolicyError`."""
    path = Path(path)
    shown = display_path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)  # never more: a huge file is refused, not read
    except OSError as exc:
        raise PolicyError(shown, [(None, "", f"cannot read policy: {exc.strerror or exc}")]) from None
    if len(data) > MAX_BYTES:
        raise PolicyError(shown, [(None, "", f"larger than {MAX_BYTES} bytes: not a policy file")])
    version = hashlib.sha256(data).hexdigest()[:16]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(shown, [(None, "", f"not UTF-8 text (byte {exc.start})")]) from None
    try:
        tree, lines = load_with_lines(text)
    except YamlSourceError as exc:
        raise PolicyError(shown, [(exc.line, dotted(exc.loc), exc.message)]) from None
    if tree is None:
        raise PolicyError(shown, [(1, "", "empty policy file")])
    try:
        spec = PolicySpec.model_validate(tree)
    except ValidationError as exc:
        raise PolicyError(shown, _pydantic_problems(exc, lines)) from None
    return LoadedPolicy(path, shown, version, spec, lines)


def dotted(loc: Iterable[Any]) -> str:
    """A loc (tuple of keys and indexes) as the dotted field path of an error message."""
    return ".".join(str(part) for part in loc)


def _pydantic_problems(exc: ValidationError, lines: LineMap) -> list[tuple[int | None, str, str]]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        on_key = bool(loc) and loc[-1] == "[key]"
        if on_key:
            loc = loc[:-1]
        kind = err["type"]
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if kind == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif kind == "missing":
            msg = f"missing required key {loc[-1]!r}"
        elif kind == "string_pattern_mismatch":
            msg = f"invalid {'key' if on_key else 'value'}: must match {err.get('ctx', {}).get('pattern')}"
        elif on_key:
            msg = f"invalid key: {msg}"
        line = lines.line(loc)
        problems.append((line, dotted(loc), msg))
    problems.sort(key=lambda p: p[0] or 0)
    return problems
