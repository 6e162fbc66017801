import pytest

from core import serde


def test_unframe_rejects_foreign_bytes():
    for bad, what in [(b"", "fewer than"), (b"\x01\x00\x00\x00\x01x", "magic byte"), (None, "null")]:
        with pytest.raises(serde.FramingError, match=what):
            serde.unframe(bad)


def test_frame_unframe():
    sid, body = serde.unframe(serde.frame(7, b"abc"))
    assert (sid, bytes(body)) == (7, b"abc")
