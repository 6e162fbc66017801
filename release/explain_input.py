"""Input lines of `liaison policy explain`, read so that no line can stop the run.

The input is read as bytes, one line at a time, each line bounded (:data:`MAX_LINE_BYTES`): a
longer line is skipped to its end without being held in memory and stands as :data:`TOO_LONG`.
:func:`decode_line` turns one line into its JSON value, or raises :class:`LineProblem` whose text
names the problem (not UTF-8, too long, blank, invalid or too deeply nested JSON, a non-finite
number with its path...) and never the line's content.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Iterator, Union

from schemas.models.jsontext import MAX_DEPTH, JsonTextError, loads_strict

__all__ = ["MAX_LINE_BYTES", "MAX_DEPTH", "TOO_LONG", "LineProblem", "read_lines", "decode_line"]

#: Longest input line accepted, in bytes, newline excluded (1 MiB).
MAX_LINE_BYTES = 1 << 20
_SKIP_CHUNK = 1 << 16


class _TooLong:
    def __repr__(self) -> str:
        return "TOO_LONG"


#: Stands for a line longer than :data:`MAX_LINE_BYTES` (its bytes were skipped, not kept).
TOO_LONG = _TooLong()


class LineProblem(ValueError):
    """One input line cannot be answered; the text names the problem, never the line's content."""


def read_lines(stream: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[Union[bytes, _TooLong]]:
    """Every line of a binary ``stream``, without its ``\\n``; :data:`TOO_LONG` for one over ``limit`` bytes.

    At most ``limit + 1`` bytes are held at a time, however long a line is.
    """
    while True:
        chunk = stream.readline(limit + 1)
        if not chunk:
            return
        if chunk.endswith(b"\n"):
            yield chunk[:-1]
        elif len(chunk) <= limit:  # last line, without a newline
            yield chunk
        else:
            while chunk and not chunk.endswith(b"\n"):  # skip the rest of the line
                chunk = stream.readline(_SKIP_CHUNK)
            yield TOO_LONG


def decode_line(number: int, raw: Union[bytes, str, _TooLong]) -> Any:
    """The JSON value of line ``number`` (1-based): UTF-8 decoded, strictly parsed; raise :class:`LineProblem`."""
    if raw is TOO_LONG:
        raise LineProblem(f"line longer than {MAX_LINE_BYTES} bytes (not read)")
    if isinstance(raw, (bytes, bytearray)):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LineProblem(f"not valid UTF-8 (byte {exc.start})") from None
    else:
        text = raw
    if number == 1 and text.startswith("\ufeff"):
        text = text[1:]
    text = text.rstrip("\r\n")
    if not text.strip():
        raise LineProblem('blank line (expected {"type": ..., "value": {...}})')
    try:
        return loads_strict(text)
    except JsonTextError as exc:
        raise LineProblem(str(exc)) from None
