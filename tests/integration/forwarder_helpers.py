"""Shared by the forwarder's integration tests: start a forwarder subprocess and follow its log events, fresh
consumer groups, publishing, reading back, and what the partner topics must hold (checked against the audit and
the pure release decisions)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import uuid
from collections import Counter
from pathlib import Path

from confluent_kafka.serialization import MessageField, SerializationContext

import schemas

from core import REPO_ROOT, serde
from core.audit import rows_of
from core.readback import end_offsets, seed_group
from core.topics import (AUDIT_TOPIC, COMPONENT_PREFIX, DEADLETTER_TOPIC, HOLD_TOPIC, ORIGIN_PREFIX, PARTNER_PREFIX,
                         source_of_recipient_topic, topic_for)
from deploy import topics
from producers.publisher import Publisher
from release import SecretStore, decide, envelope, load_policies
from schemas.models import to_avro

LIAISON = str(REPO_ROOT / ".venv" / "bin" / "liaison")
INTERNAL = [topic_for(t) for t in schemas.MESSAGE_TYPES]
PARTNER_TOPICS = [t.name for t in topics.load_topics() if t.name.startswith(PARTNER_PREFIX)]
ORIGIN_TOPICS = [t.name for t in topics.load_topics() if t.name.startswith(ORIGIN_PREFIX)]
COMPONENT_TOPICS = [t.name for t in topics.load_topics() if t.name.startswith(COMPONENT_PREFIX)]
# every recipient's feed: the partners' and our components' (one engine, one audit for all of them)
ALL = INTERNAL + PARTNER_TOPICS + COMPONENT_TOPICS + [AUDIT_TOPIC, DEADLETTER_TOPIC, HOLD_TOPIC]
POLICIES = REPO_ROOT / "deploy" / "policies"


def start_forwarder(group: str, instance: str, *extra: str, policies=POLICIES) -> subprocess.Popen:
    return subprocess.Popen([LIAISON, "forward", "--group", group, "--instance", instance,
                             "--policies", str(policies), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)


class ForwarderLog:
    """A forwarder subprocess's stderr (one JSON event per line), read as it comes so a test can wait for
    events. Take the whole text with finish() once the process has exited."""

    def __init__(self, p: subprocess.Popen):
        self.lines: list[str] = []
        self.events: list[str] = []  # the "event" of each line ("" for a line that is not JSON)
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(p.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            try:
                event = json.loads(line).get("event", "")
            except (ValueError, AttributeError):
                event = ""
            with self._cond:
                self.lines.append(line)
                self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def count(self, event: str) -> int:
        with self._cond:
            return self.events.count(event)

    def wait_for(self, event: str, n: int = 1, timeout: float = 120.0) -> None:
        """Until the forwarder has logged `event` n times; fails if it exits or times out first."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.events.count(event) >= n or self._closed, timeout):
                raise AssertionError(f"no {event!r} x{n} within {timeout:.0f}s:\n{''.join(self.lines[-20:])}")
            if self.events.count(event) < n:
                raise AssertionError(f"the forwarder exited before {event!r} x{n}:\n{''.join(self.lines[-20:])}")

    def finish(self, timeout: float = 30.0) -> str:
        self._thread.join(timeout)
        return "".join(self.lines)


def run_forwarder(group: str, instance: str, idle: float = 4.0, timeout: float = 300, policies=POLICIES) -> str:
    p = start_forwarder(group, instance, "--max-idle", str(idle), policies=policies)
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err[-3000:]
    return err


def fresh_group() -> tuple[str, str]:
    """A new forwarder group that starts at the current end of the internal, partner-origin and hold topics."""
    group = f"liaison-forwarder-test-{uuid.uuid4().hex[:8]}"  # the forwarder principal's groups: liaison-forwarder*
    seed_group(group, end_offsets(INTERNAL + ORIGIN_TOPICS + [HOLD_TOPIC]))
    return group, group


def publish(models) -> dict[str, object]:
    with Publisher() as pub:
        for m in models:
            pub.publish(m)
    return {str(m.label.message_id): m for m in models}


def expected_releases(models: dict, policies_dir=POLICIES) -> dict[str, set[str]]:
    """Pure decisions for the same inputs: partner -> message ids it must receive (now or when due)."""
    policies = load_policies(policies_dir, SecretStore())
    out = {code: set() for code in policies}
    for mid, m in models.items():
        name = type(m).__name__
        for code, pol in policies.items():
            if decide(name, to_avro(m), pol).decision == "RELEASE":
                out[code].add(mid)
    return out


def by_partner(msgs) -> dict[str, list]:
    """Feed records by recipient: partner codes (RUS) and our components (naval, air, intel)."""
    out: dict[str, list] = {}
    for m in msgs:
        if m.topic().startswith((PARTNER_PREFIX, COMPONENT_PREFIX)):
            out.setdefault(source_of_recipient_topic(m.topic())[0], []).append(m)
    return out


def partner_feeds(msgs) -> dict[str, list]:
    """Feed records of the partners only (what leaves our side)."""
    return {code: ms for code, ms in by_partner(msgs).items() if code.isupper()}


def header(msg, name: str) -> str | None:
    for k, v in msg.headers() or []:
        if k == name:
            return v.decode()
    return None


def audits(msgs) -> list[dict]:
    """Every recipient decision the audit records among ``msgs`` carry, one flat row each (core.audit)."""
    deser = serde.avro_deserializer()
    return rows_of(deser(m.value(), SerializationContext(AUDIT_TOPIC, MessageField.VALUE))
                   for m in msgs if m.topic() == AUDIT_TOPIC)


def decision_audits(records: list[dict]) -> list[dict]:
    """The one decision per (input, partner): every audit but the RELEASED ones (a held record released later)."""
    return [a for a in records if a["decision"] != "RELEASED"]


def audit_key(a: dict) -> tuple:
    return a["input_topic"], a["input_partition"], a["input_offset"], a["partner"]


def canonical(view: dict) -> str:
    return json.dumps(view, default=str, sort_keys=True)


def check_partner_records(models: dict, msgs, policies_dir=POLICIES) -> dict[str, Counter]:
    """Every partner record is the pure decision's view of an input whose audit says RELEASE (at once) or
    RELEASED (from the hold), with that release's envelope (key, headers, timestamp): no more, no fewer, no
    duplicate. An input's audit is HELD or RELEASE exactly when decide() releases it, HELD exactly when its
    envelope was not yet due. Returns partner -> Counter of decisions."""
    policies = load_policies(policies_dir, SecretStore())
    records = audits(msgs)
    want: dict[str, Counter] = {code: Counter() for code in policies}
    decided: dict[str, Counter] = {code: Counter() for code in policies}
    for a in records:
        decided[a["partner"]][a["decision"]] += 1
        if a["decision"] == "DEAD_LETTER":
            continue
        m = models[a["message_id"]]
        name = type(m).__name__
        policy = policies[a["partner"]]
        d = decide(name, to_avro(m), policy)
        if a["decision"] in ("RELEASE", "HELD", "RELEASED"):
            assert d.decision == "RELEASE", (a, d)
            e = envelope(name, d, policy)
            due_at = int(a["due_at"].timestamp() * 1000) if a["due_at"] is not None else None
            decided_at = int(a["decided_at"].timestamp() * 1000)
            if a["decision"] == "RELEASE":
                assert e.due_ms is None or e.due_ms <= decided_at, a
            else:
                assert due_at == e.due_ms and (a["decision"] == "RELEASED") == (decided_at >= e.due_ms), a
            if a["decision"] != "HELD":
                want[a["partner"]][(a["output_topic"], e.key, tuple(e.headers), e.timestamp_ms,
                                    canonical(d.released))] += 1
        else:
            assert d.decision == "WITHHOLD" or a["rule"] == "hold-bound", (a, d)
    deser = serde.avro_deserializer()
    got: dict[str, Counter] = {code: Counter() for code in policies}
    for code, ms in by_partner(msgs).items():
        for m in ms:
            view = deser(m.value(), SerializationContext(m.topic(), MessageField.VALUE))
            got[code][(m.topic(), m.key(), tuple(m.headers() or []), m.timestamp()[1], canonical(view))] += 1
    for code in policies:
        assert max(want[code].values(), default=1) == 1, f"{code}: one expected view twice"
        missing, extra = want[code] - got[code], got[code] - want[code]
        assert not missing and not extra, f"{code}: {sum(missing.values())} missing, {sum(extra.values())} extra " \
                                          f"(or duplicated); e.g. {list(missing)[:1]} {list(extra)[:1]}"
    return decided


def scan_sentinels(partner_msgs: dict, allowed: dict[str, set[str]]) -> tuple[dict[str, Counter], list]:
    """Sentinels planted by the simulator found in partner records (value, key, headers): per partner the
    fields seen, and the leaks (fields not in ``allowed[partner]``)."""
    pattern = re.compile(rb"SENTINEL-([a-z_.]+)-[0-9a-f]{8}")
    seen = {code: Counter() for code in partner_msgs}
    leaks = []
    for code, ms in partner_msgs.items():
        for m in ms:
            raw = b"".join([m.value(), m.key() or b""] + [v or b"" for _, v in m.headers() or []])
            for field in pattern.findall(raw):
                field = field.decode()
                seen[code][field] += 1
                if field not in allowed[code]:
                    leaks.append((code, m.topic(), m.offset(), field))
    return seen, leaks


def short_bucket_policies(dest: Path, seconds: int) -> Path:
    """deploy/policies with RUS strike reports bucketed (time and label.created_at) to ``seconds``."""
    shutil.copytree(POLICIES, dest)
    text = (dest / "RUS.yaml").read_text()
    assert text.count("{bucket: {seconds: 3600}}") == 2
    (dest / "RUS.yaml").write_text(text.replace("{bucket: {seconds: 3600}}", f"{{bucket: {{seconds: {seconds}}}}}"))
    return dest
