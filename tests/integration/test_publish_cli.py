"""`liaison publish`: a file with bad lines publishes nothing (default) and names each bad line and field."""

import json
import os
import subprocess
import uuid

import schemas

from core.topics import topic_for
from core import REPO_ROOT
from core.readback import end_offsets, read_between
from schemas.examples import example

LIAISON = str(REPO_ROOT / ".venv" / "bin" / "liaison")
TOPIC = topic_for("AirTrack")


def _line(**changes) -> str:
    m = example("AirTrack")
    m.label.message_id = uuid.uuid4()
    doc = json.loads(m.model_dump_json())
    for path, value in changes.items():
        target = doc
        *head, last = path.split("__")
        for part in head:
            target = target[part]
        target[last] = value
    return json.dumps(doc)


def _publish(path, *extra):
    return subprocess.run([LIAISON, "publish", "AirTrack", "--file", str(path), *extra], capture_output=True,
                          text=True, timeout=120, env=os.environ)


def _ids_on_topic(start):
    return {dict(m.headers())["message_id"].decode() for m in read_between(start, end_offsets([TOPIC]))}


def test_bad_lines_reject_the_whole_file_and_are_named(bus, tmp_path):
    good = [_line(), _line(), _line()]
    lines = [good[0], _line(position__lat=123.0), good[1], "{not json", _line(label__releasable_to=[]), good[2]]
    f = tmp_path / "tracks.ndjson"
    f.write_text("\n".join(lines) + "\n")
    start = end_offsets([TOPIC])
    res = _publish(f)
    assert res.returncode != 0
    err = res.stderr
    assert "line 2: position.lat" in err
    assert "line 4:" in err and "JSON" in err
    assert "line 5: label.releasable_to" in err
    assert "line 1:" not in err and "line 3:" not in err
    assert "nothing published" in err
    sent_ids = {json.loads(g)["label"]["message_id"] for g in good}
    assert not (_ids_on_topic(start) & sent_ids)


def test_skip_invalid_publishes_the_valid_lines_and_still_fails(bus, tmp_path):
    good = [_line(), _line()]
    f = tmp_path / "tracks.ndjson"
    f.write_text("\n".join([good[0], _line(speed_kt=-5), good[1]]) + "\n")
    start = end_offsets([TOPIC])
    res = _publish(f, "--skip-invalid")
    assert res.returncode != 0
    assert "line 2: speed_kt" in res.stderr
    assert "published 2 AirTrack" in res.stdout
    assert _ids_on_topic(start) == {json.loads(g)["label"]["message_id"] for g in good}


def test_valid_file_publishes_everything(bus, tmp_path):
    good = [_line() for _ in range(5)]
    f = tmp_path / "tracks.ndjson"
    f.write_text("\n".join(good) + "\n")
    start = end_offsets([TOPIC])
    res = _publish(f)
    assert res.returncode == 0, res.stderr
    assert _ids_on_topic(start) == {json.loads(g)["label"]["message_id"] for g in good}
