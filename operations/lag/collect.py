"""One poll cycle against Kafka -> a `Snapshot` of facts (the I/O half of the lag monitor). Offsets and
metadata only: the monitor's principal (`lag-monitor`) has DESCRIBE on the groups and topics it watches and no
READ on any data topic, so no record is ever fetched.

A cycle, with every request of a stage in flight at once:

1. list the consumer groups (AdminClient.list_consumer_groups: the broker lists those the principal may
   DESCRIBE), keep the wanted ones;
2. describe them (state, members, assignments) and fetch each group's committed offsets
   (list_consumer_group_offsets takes one group per request: all requests are sent together);
3. end offsets of every partition seen, in one list_offsets call per isolation level: OffsetSpec.latest()
   under READ_COMMITTED (the last stable offset, what lag counts against) and READ_UNCOMMITTED (the high
   watermark, shown for comparison with Kafka's tool and to reveal hung transactions); with them, one
   describe_topics call for the topic ids (a re-created topic gets a new one).

`offsets_for_times` asks the broker's time index (ListOffsets by timestamp, READ_COMMITTED) for the first offset
whose record timestamp is >= a time: the monitor uses it to date offsets older than its own samples.

All clients are built through core.kafka (connection and security settings in one place).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

from confluent_kafka import (ConsumerGroupTopicPartitions, IsolationLevel, KafkaError, KafkaException, TopicCollection,
                             TopicPartition)
from confluent_kafka.admin import OffsetSpec

from core import kafka
from core.settings import Settings
from operations.lag.model import GroupObs, PartitionObs, Snapshot

#: Groups our own tools create (readback, ACL probes): left out by default.
DEFAULT_EXCLUDE_PREFIXES = ("liaison-readback-",)


def _err_text(e: BaseException | KafkaError) -> str:
    if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError):
        e = e.args[0]
    if isinstance(e, KafkaError):
        return f"{e.name()}: {e.str()}"
    return f"{type(e).__name__}: {e}"


def _state_name(state) -> str | None:
    if state is None:
        return None
    return getattr(state, "name", str(state))


def wanted(group_id: str, groups: Sequence[str] | None, exclude_prefixes: Iterable[str]) -> bool:
    if groups:
        return group_id in groups
    return not any(p and group_id.startswith(p) for p in exclude_prefixes)


class Collector:
    """Reads one `Snapshot` per `poll()`. Reuse one instance: its admin client lives across cycles."""

    def __init__(self, groups: Sequence[str] | None = None,
                 exclude_prefixes: Iterable[str] = DEFAULT_EXCLUDE_PREFIXES, settings: Settings | None = None,
                 request_timeout: float = 10.0, principal: str | None = None):
        self.groups = list(groups or [])
        #: who the monitor authenticates as on secured servers (ACLs: deploy/acls.yaml, `lag-monitor`)
        self.principal = principal or kafka.LAG_MONITOR
        self.exclude_prefixes = tuple(exclude_prefixes)
        self.settings = settings
        self.request_timeout = request_timeout
        self._admin = kafka.admin({"socket.nagle.disable": True}, settings=self.settings, principal=self.principal)
        self._lock = threading.Lock()
        #: timings of the last cycle, seconds per stage (for the benchmark and the logs)
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ public

    def poll(self) -> Snapshot:
        """One cycle. Never raises for Kafka trouble: a failed cycle is a Snapshot with `error`."""
        with self._lock:
            t0 = time.monotonic()
            try:
                snap = self._poll()
            except Exception as e:  # noqa: BLE001 - any failure of the cycle is reported, not raised
                return Snapshot(time.time(), {}, _err_text(e), time.monotonic() - t0)
            return Snapshot(snap.taken_at, snap.groups, None, time.monotonic() - t0)

    def offsets_for_times(self, requests: list[dict[tuple[str, int], float]]
                          ) -> list[dict[tuple[str, int], tuple[int, int] | None]]:
        """For each request {partition: epoch seconds}: the first offset whose record timestamp is >= that time
        and the record's timestamp (ms), or None when no readable record (below the LSO) is that recent. All
        requests are in flight at once. A partition that could not be asked is missing from its answer."""
        if not requests:
            return []
        t = time.monotonic()
        with self._lock:
            futs = [self._admin.list_offsets(
                {TopicPartition(tp, p): OffsetSpec.for_timestamp(int(ts * 1000)) for (tp, p), ts in req.items()},
                isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=self.request_timeout)
                for req in requests]
            out: list[dict[tuple[str, int], tuple[int, int] | None]] = []
            for f in futs:
                ans: dict[tuple[str, int], tuple[int, int] | None] = {}
                for tp, fut in f.items():
                    try:
                        r = fut.result()
                    except Exception:  # noqa: BLE001 - nothing learnt for this partition
                        continue
                    ans[(tp.topic, tp.partition)] = (r.offset, r.timestamp) if r.offset >= 0 else None
                out.append(ans)
        self.timings["time_index"] = self.timings.get("time_index", 0.0) + time.monotonic() - t
        self.timings["time_index_requests"] = self.timings.get("time_index_requests", 0.0) + len(requests)
        return out

    def close(self) -> None:
        """Nothing to release but the admin client (garbage-collected); kept for `with` and symmetry."""

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the cycle

    def _poll(self) -> Snapshot:
        timings: dict[str, float] = {}
        t = time.monotonic()
        rt = self.request_timeout
        admin = self._admin
        if self.groups:
            names = list(dict.fromkeys(self.groups))
        else:
            listing = admin.list_consumer_groups(request_timeout=rt).result()
            if listing.errors and not listing.valid:
                raise KafkaException(listing.errors[0])
            names = sorted({g.group_id for g in listing.valid
                            if wanted(g.group_id, None, self.exclude_prefixes)})
        timings["list_groups"] = time.monotonic() - t
        if not names:
            self.timings = timings
            return Snapshot(time.time(), {})

        t = time.monotonic()
        described = admin.describe_consumer_groups(names, request_timeout=rt)
        offset_futs = {n: admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(n)],
                                                            request_timeout=rt)[n] for n in names}
        groups: dict[str, dict] = {}
        for n in names:
            info: dict = {"state": None, "members": None, "assigned": set(), "committed": {}, "errors": {},
                          "error": None}
            groups[n] = info
            try:
                d = described[n].result()
                info["state"] = _state_name(d.state)
                info["members"] = len(d.members)
                for m in d.members:
                    if m.assignment is not None:
                        info["assigned"].update((tp.topic, tp.partition) for tp in m.assignment.topic_partitions)
            except Exception as e:  # noqa: BLE001
                info["error"] = f"describe failed: {_err_text(e)}"
            try:
                res = offset_futs[n].result()
                for tp in res.topic_partitions:
                    key = (tp.topic, tp.partition)
                    if tp.error is not None:
                        info["errors"][key] = f"committed offset: {_err_text(tp.error)}"
                    info["committed"][key] = tp.offset if tp.offset >= 0 else None
            except Exception as e:  # noqa: BLE001
                info["error"] = f"offset fetch failed: {_err_text(e)}"
            if (self.groups and info["error"] is None and info["state"] == "DEAD" and not info["committed"]
                    and not info["members"]):
                info["error"] = "no such group (no members, no committed offsets)"
        timings["describe_and_offsets"] = time.monotonic() - t

        t = time.monotonic()
        keys = sorted({k for g in groups.values() for k in (*g["committed"], *g["assigned"])})
        taken_at = time.time()
        lso, hwm, end_err, ids = self._end_offsets(keys)
        timings["end_offsets"] = time.monotonic() - t

        out: dict[str, GroupObs] = {}
        for n, g in groups.items():
            parts: dict[tuple[str, int], PartitionObs] = {}
            for key in sorted(set(g["committed"]) | g["assigned"]):
                err = g["errors"].get(key) or end_err.get(key)
                parts[key] = PartitionObs(key[0], key[1], g["committed"].get(key), lso.get(key), hwm.get(key), err,
                                          ids.get(key[0]))
            out[n] = GroupObs(n, g["state"], g["members"], parts, g["error"])
        self.timings = timings
        return Snapshot(taken_at, out)

    def _end_offsets(self, keys: list[tuple[str, int]]):
        """(LSO, HWM, errors) per partition, one batched list_offsets call per isolation level, and the topic
        ids (describe_topics, in flight at the same time; a topic that cannot be described has none)."""
        if not keys:
            return {}, {}, {}, {}
        req = {TopicPartition(t, p): OffsetSpec.latest() for t, p in keys}
        committed_f = self._admin.list_offsets(req, isolation_level=IsolationLevel.READ_COMMITTED,
                                               request_timeout=self.request_timeout)
        uncommitted_f = self._admin.list_offsets(req, isolation_level=IsolationLevel.READ_UNCOMMITTED,
                                                 request_timeout=self.request_timeout)
        topics = sorted({t for t, _ in keys})
        try:
            described = self._admin.describe_topics(TopicCollection(topics), request_timeout=self.request_timeout)
        except Exception:  # noqa: BLE001 - ids are optional (end offsets going backwards still reset the samples)
            described = {}
        lso: dict[tuple[str, int], int] = {}
        hwm: dict[tuple[str, int], int] = {}
        errors: dict[tuple[str, int], str] = {}
        for futs, dest in ((committed_f, lso), (uncommitted_f, hwm)):
            for tp, f in futs.items():
                key = (tp.topic, tp.partition)
                try:
                    dest[key] = f.result().offset
                except Exception as e:  # noqa: BLE001
                    text = _err_text(e)
                    if "UNKNOWN_TOPIC_OR_PART" in text:
                        text = "topic or partition not found (deleted?)"
                    errors.setdefault(key, f"end offset: {text}")
        ids: dict[str, str] = {}
        for topic, f in described.items():
            try:
                tid = f.result().topic_id
            except Exception:  # noqa: BLE001
                continue
            if tid is not None:
                ids[topic] = str(tid)
        return lso, hwm, errors, ids
