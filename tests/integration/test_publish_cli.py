"""`liaison publish`: a file with bad lines publishes nothing (default) and names each bad line and field; a file
is published in one transaction, so a failure while producing publishes nothing either."""

import json
import os
import subprocess
import uuid

import pytest

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


def _ids_on_topic(start, isolation="read_committed", topics=(TOPIC,)):
    end = end_offsets(list(topics), isolation=isolation)
    return {dict(m.headers())["message_id"].decode() for m in read_between(start, end, isolation=isolation)}


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


def test_a_one_mebibyte_string_on_line_500_of_1000_publishes_nothing_and_is_named(bus, tmp_path):
    lines = [_line() for _ in range(1000)]
    lines[499] = _line(callsign="SECRET-" + "A" * (1 << 20))
    f = tmp_path / "tracks.ndjson"
    f.write_text("\n".join(lines) + "\n")
    start = end_offsets([TOPIC], isolation="read_uncommitted")
    res = _publish(f)
    assert res.returncode != 0
    assert "line 500: callsign: String should have at most 128 characters" in res.stderr
    assert "SECRET" not in res.stderr + res.stdout and "nothing published" in res.stderr
    ids = {json.loads(line)["label"]["message_id"] for line in lines}
    assert not (_ids_on_topic(start) & ids)
    # rejected before anything was produced: not even an aborted record in the log
    assert end_offsets([TOPIC], isolation="read_uncommitted") == start


def test_a_failure_while_producing_aborts_the_transaction_and_publishes_nothing(bus):
    """500 records in the transaction, then one the principal may not write (producer-air on the naval topic):
    the commit is refused, the transaction aborted, and a read_committed reader sees none of the 500 - though
    they did reach the log (read_uncommitted sees them)."""
    from producers.publisher import Publisher, PublishError

    naval = topic_for("MaritimeTrack")
    models = [example("AirTrack") for _ in range(500)]
    for m in models:
        m.label.message_id = uuid.uuid4()
    ids = {str(m.label.message_id) for m in models}
    stray = example("MaritimeTrack")
    stray.label.message_id = uuid.uuid4()
    start = end_offsets([TOPIC, naval], isolation="read_uncommitted")
    pub = Publisher(transactional=True, principal="producer-air", producer_conf={"message.timeout.ms": 10000})
    with pytest.raises(PublishError, match="(?i)authoriz"):
        with pub:
            for m in models:
                pub.publish(m)
            pub.publish(stray)
    assert pub.committed["AirTrack"] == 0
    assert not (_ids_on_topic(start, topics=(TOPIC, naval)) & (ids | {str(stray.label.message_id)}))
    assert ids <= _ids_on_topic(start, isolation="read_uncommitted")

