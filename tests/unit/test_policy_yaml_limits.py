"""Hostile policy text is refused with a PolicyError naming the file and line, in bounded time and memory (the
cases tests/faults/test_fuzz.py found crashing or hanging the loader): deep nesting, recursive aliases, alias
bombs, oversized files, characters YAML forbids, scalars the safe constructors reject."""

from __future__ import annotations

import time

import pytest

from release import PolicyError, load_policy
from release.loader import MAX_BYTES
from release.yamlsrc import MAX_DEPTH, MAX_VALUES

pytestmark = pytest.mark.unit


def laughs(levels: int, width: int = 10) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "partner: RUS\n" + "\n".join(lines) + "\n"


CASES = {
    "deep flow list": ("partner: " + "[" * 5000 + "]" * 5000, 1, f"nested deeper than {MAX_DEPTH} levels"),
    "deep flow map": ("partner: " + "{a: " * 3000 + "1" + "}" * 3000, 1, f"nested deeper than {MAX_DEPTH} levels"),
    # (the line of the value that is too deep: k0's, reached through k1's alias)
    "deep through aliases": ("\n".join(f"k{i}: &x{i} " + "[" * 60 + (f"*x{i - 1}" if i else "1") + "]" * 60
                                       for i in range(20)) + "\n", 1, "(through aliases)"),
    "recursive alias": ("partner: RUS\nlabel: &a {time: [*a]}\n", 2, "alias of an enclosing value"),
    "billion laughs": (laughs(9), 2, f"more than {MAX_VALUES} values with its aliases expanded"),
    "too many values": ("x: [" + "a, " * (MAX_VALUES + 10) + "]\n", 1, f"more than {MAX_VALUES} values"),
    "invalid date": ("partner: RUS\nclassification_ceiling: 2024-13-45\n", 2, "invalid value '2024-13-45'"),
    "timestamp tag on a word": ("partner: !!timestamp RUS\n", 1, "invalid value 'RUS'"),
    "python tag": ("partner: !!python/object:os.system x\n", 1, "could not determine a constructor"),
    "5000-digit integer": ("partner: RUS\nx: " + "9" * 5000 + "\n", 2, "Exceeds the limit"),
    "NUL character": ("partner: RUS\nx: \x00\n", 2, "unacceptable character #x0000"),
}


@pytest.mark.parametrize("name", CASES)
def test_hostile_text_is_a_policy_error_with_its_line(tmp_path, name):
    text, line, words = CASES[name]
    path = tmp_path / "RUS.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert time.perf_counter() - started < 5
    e = info.value
    assert e.file.endswith("RUS.yaml") and e.line == line, str(e)
    assert words in e.message, e.message
    assert str(e).startswith(f"{e.file}:{line}: ")


def test_a_file_larger_than_the_bound_is_not_read(tmp_path):
    path = tmp_path / "RUS.yaml"
    path.write_bytes(b"# " + b"x" * MAX_BYTES + b"\npartner: RUS\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.line is None and f"larger than {MAX_BYTES} bytes" in info.value.message


def test_aliases_within_the_bounds_still_work(tmp_path):
    """Anchors and aliases stay usable: a small alias tree loads like its expansion."""
    path = tmp_path / "RUS.yaml"
    path.write_text("partner: RUS\nclassification_ceiling: SECRET\nsets: {designated: &d [daesh]}\nlabel: {}\n"
                    "x: [*d, *d]\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:  # x is not a policy key: the alias itself was fine
        load_policy(path)
    assert info.value.message == "unknown key 'x'"
