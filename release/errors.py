"""Errors of the release package."""

from __future__ import annotations

from pathlib import Path

__all__ = ["PolicyError", "PolicyErrors", "MissingSecret", "display_path"]


def display_path(path: Path | str) -> str:
    """``path`` relative to the working directory when it lies below it, else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


class PolicyError(ValueError):
    """A policy file that cannot be used. Its text names file, line and field path of each problem.

    ``file``, ``line`` and ``path`` describe the first problem (``line`` is None when the problem has
    no line, e.g. an empty directory; ``path`` is the dotted field path, ``""`` for the whole file).
    ``problems`` holds ``(line, path, message)`` of every problem found, first one first.
    """

    def __init__(self, file: str, problems: list[tuple[int | None, str, str]]):
        if not problems:
            raise ValueError("PolicyError needs at least one problem")
        self.file = file
        self.problems = list(problems)
        self.line, self.path, self.message = self.problems[0]
        super().__init__("\n".join(self.format(*p) for p in self.problems))

    @classmethod
    def single(cls, file: Path | str, line: int | None, path: str, message: str) -> PolicyError:
        return cls(display_path(file) if isinstance(file, Path) else file, [(line, path, message)])

    def format(self, line: int | None, path: str, message: str) -> str:
        where = self.file if line is None else f"{self.file}:{line}"
        return f"{where}: {path}: {message}" if path else f"{where}: {message}"


class PolicyErrors(PolicyError):
    """Problems in several policy files (e.g. two partners' policies that let them join their copies of a
    record). ``errors`` holds one :class:`PolicyError` per file; ``file``, ``line``, ``path``, ``message``
    and ``problems`` are those of the first."""

    def __init__(self, errors: list[PolicyError]):
        if not errors:
            raise ValueError("PolicyErrors needs at least one PolicyError")
        self.errors = list(errors)
        first = self.errors[0]
        self.file = first.file
        self.problems = list(first.problems)
        self.line, self.path, self.message = self.problems[0]
        ValueError.__init__(self, "\n".join(str(e) for e in self.errors))


class MissingSecret(LookupError):
    """No pseudonymisation key for a partner in the secret store."""
