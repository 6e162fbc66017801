"""Read what is on topics between two snapshots of end offsets (demo, tests, operators' checks)."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import TopicPartition

from core import kafka

Offsets = dict[tuple[str, int], int]


def end_offsets(topics: list[str], isolation: str = "read_committed") -> Offsets:
    """Per partition, the offset the next record will get (LSO under read_committed)."""
    c = kafka.consumer(f"liaison-readback-{uuid.uuid4().hex[:8]}", {"isolation.level": isolation})
    try:
        md = c.list_topics(timeout=10)
        out = {}
        for t in topics:
            if t not in md.topics:
                continue
            for p in md.topics[t].partitions:
                out[(t, p)] = _watermark(c, TopicPartition(t, p))
        return out
    finally:
        c.close()


_TRANSIENT = ("NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "UNKNOWN_TOPIC_OR_PART", "_TIMED_OUT")


def _watermark(c, tp: TopicPartition, attempts: int = 50) -> int:
    """The partition's end offset; retries while leadership is still settling (a new topic or broker)."""
    from confluent_kafka import KafkaException

    for i in range(attempts):
        try:
            return c.get_watermark_offsets(tp, timeout=10, cached=False)[1]
        except KafkaException as e:
            if e.args[0].name() not in _TRANSIENT or i == attempts - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def read_between(start: Offsets, end: Offsets, timeout: float = 60.0, isolation: str = "read_committed") -> list:
    """Every record with start <= offset < end per partition (start missing: from the beginning)."""
    wanted = {tp: (start.get(tp, 0), e) for tp, e in end.items() if e > start.get(tp, 0)}
    if not wanted:
        return []
    c = kafka.consumer(f"liaison-readback-{uuid.uuid4().hex[:8]}", {"isolation.level": isolation,
                                                                     "enable.partition.eof": True})
    c.assign([TopicPartition(t, p, s) for (t, p), (s, _) in wanted.items()])
    out, done = [], set()
    deadline = time.monotonic() + timeout
    try:
        while len(done) < len(wanted) and time.monotonic() < deadline:
            for msg in c.consume(1000, 0.5):
                tp = (msg.topic(), msg.partition())
                if msg.error() is not None:
                    if msg.error().code() == msg.error()._PARTITION_EOF and tp in wanted:
                        done.add(tp)
                    continue
                if tp in wanted and msg.offset() < wanted[tp][1]:
                    out.append(msg)
                if tp in wanted and msg.offset() >= wanted[tp][1] - 1:
                    done.add(tp)
    finally:
        c.close()
    if len(done) < len(wanted):
        missing = sorted(set(wanted) - done)
        raise TimeoutError(f"read_between: {len(missing)} partition(s) not read to the end in {timeout:.0f}s: "
                           f"{missing[:3]}")
    return out


def committed_offsets(group: str, topics: list[str]) -> Offsets:
    """The group's committed offsets for every partition of `topics` (0 where it has none)."""
    ends = end_offsets(topics)
    c = kafka.consumer(group)
    try:
        got = c.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
    finally:
        c.close()
    return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in got}


def caught_up(group: str, topics: list[str], timeout: float = 30.0) -> bool:
    """Has ``group`` committed every data record of ``topics``? On a transactional topic the end offset lies past
    the commit marker, which no consumer commits: the records between the committed offsets and the ends are read
    (read_committed) and the group is caught up when there is none."""
    ends = end_offsets(topics)
    committed = committed_offsets(group, topics)
    behind = {tp: e for tp, e in ends.items() if committed.get(tp, 0) < e}
    return not behind or not read_between({tp: committed.get(tp, 0) for tp in behind}, behind, timeout)


def seed_group(group: str, offsets: Offsets) -> None:
    """Commit `offsets` for a group that has no members yet (start a new group at a chosen point)."""
    c = kafka.consumer(group)
    try:
        c.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    finally:
        c.close()
