"""One poll cycle against Kafka -> a `Snapshot` of facts (the I/O half of the lag monitor).

A cycle, with every request of a stage in flight at once:

1. list the consumer groups (AdminClient.list_consumer_groups), keep the wanted ones;
2. describe them (state, members, assignments) and fetch each group's committed offsets
   (list_consumer_group_offsets takes one group per request: all requests are sent together);
3. end offsets of every partition seen, in one list_offsets call per isolation level: OffsetSpec.latest()
   under READ_COMMITTED (the last stable offset, what lag counts against) and READ_UNCOMMITTED (the high
   watermark, shown for comparison with Kafka's tool and to reveal hung transactions);
4. only for partitions with offset lag > 0: the first data record at or after the committed offset (its
   offset and timestamp), read by assign + consume with read_committed consumers. One consumer can hold one
   position per partition, so when several groups wait at different offsets of the same partition the reads
   are split into rounds, run on a small pool of long-lived reader consumers in parallel. A record found
   below the LSO is immutable, so (topic, partition, committed offset) -> record is cached across cycles.

All clients are built through core.kafka (connection and security settings in one place).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from core import kafka
from operations.lag.model import (LOOKUP_EMPTY, LOOKUP_FOUND, LOOKUP_SKIPPED, LOOKUP_UNKNOWN, GroupObs, PartitionObs,
                               Snapshot)
from core.settings import Settings

#: Groups our own tools create (readback, this monitor's readers): left out by default.
DEFAULT_EXCLUDE_PREFIXES = ("liaison-readback-",)
READER_GROUP = "liaison-readback-lag-monitor"

READER_CONFIG = {
    "isolation.level": "read_committed",
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    # a committed offset below the log start: the first record that still exists is the oldest unconsumed
    "auto.offset.reset": "earliest",
    "fetch.wait.max.ms": 20,
    "fetch.error.backoff.ms": 50,
    "topic.metadata.refresh.interval.ms": 30000,
    "socket.nagle.disable": True,
}


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
    """Reads one `Snapshot` per `poll()`. Reuse one instance: its clients and cache live across cycles."""

    def __init__(self, groups: Sequence[str] | None = None,
                 exclude_prefixes: Iterable[str] = DEFAULT_EXCLUDE_PREFIXES, settings: Settings | None = None,
                 request_timeout: float = 10.0, read_timeout: float = 5.0, readers: int = 4,
                 cache_size: int = 50_000, use_cache: bool = True, principal: str | None = None):
        self.groups = list(groups or [])
        #: who the monitor authenticates as on secured servers (ACLs: deploy/acls.yaml, `lag-monitor`)
        self.principal = principal or kafka.LAG_MONITOR
        self.exclude_prefixes = tuple(exclude_prefixes)
        self.settings = settings
        self.request_timeout = request_timeout
        self.read_timeout = read_timeout
        self.max_readers = max(1, readers)
        self.use_cache = use_cache
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, int, int], tuple[str, int | None, int | None]] = OrderedDict()
        self._admin = kafka.admin({"socket.nagle.disable": True}, settings=self.settings, principal=self.principal)
        #: topic -> (retry after (monotonic), why): topics whose records the principal may not read
        self._denied: dict[str, tuple[float, str]] = {}
        self._readers: list = []
        self._pool = ThreadPoolExecutor(self.max_readers, thread_name_prefix="lag-reader")
        self._lock = threading.Lock()
        self._reads = 0
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

    def clear_cache(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for c in self._readers:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        self._readers.clear()

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
        lso, hwm, end_err = self._end_offsets(keys)
        timings["end_offsets"] = time.monotonic() - t

        # first data record at committed offsets with offset lag > 0
        t = time.monotonic()
        requests: set[tuple[str, int, int]] = set()
        for g in groups.values():
            for key, c in g["committed"].items():
                e = lso.get(key)
                if c is not None and e is not None and e > c:
                    requests.add((key[0], key[1], c))
        found = self._first_records(requests, lso)
        timings["first_records"] = time.monotonic() - t
        timings["first_record_lookups"] = float(len(requests))
        timings["first_record_reads"] = float(self._reads)

        out: dict[str, GroupObs] = {}
        for n, g in groups.items():
            parts: dict[tuple[str, int], PartitionObs] = {}
            for key in sorted(set(g["committed"]) | g["assigned"]):
                c = g["committed"].get(key)
                err = g["errors"].get(key) or end_err.get(key)
                lookup, first, ts, note = LOOKUP_SKIPPED, None, None, None
                if c is not None and key in lso and lso[key] > c:
                    lookup, first, ts, note = found.get((key[0], key[1], c),
                                                        (LOOKUP_UNKNOWN, None, None, "not read in time"))
                parts[key] = PartitionObs(key[0], key[1], c, lso.get(key), hwm.get(key), lookup, first, ts, err,
                                          note)
            out[n] = GroupObs(n, g["state"], g["members"], parts, g["error"])
        self.timings = timings
        return Snapshot(taken_at, out)

    def _end_offsets(self, keys: list[tuple[str, int]]):
        """(LSO, HWM, errors) per partition, one batched list_offsets call per isolation level."""
        if not keys:
            return {}, {}, {}
        req = {TopicPartition(t, p): OffsetSpec.latest() for t, p in keys}
        committed_f = self._admin.list_offsets(req, isolation_level=IsolationLevel.READ_COMMITTED,
                                               request_timeout=self.request_timeout)
        uncommitted_f = self._admin.list_offsets(req, isolation_level=IsolationLevel.READ_UNCOMMITTED,
                                                 request_timeout=self.request_timeout)
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
        return lso, hwm, errors

    # ------------------------------------------------------------------ first records

    def _reader(self, i: int):
        while len(self._readers) <= i:
            self._readers.append(kafka.consumer(READER_GROUP, READER_CONFIG, self.settings, principal=self.principal))
        return self._readers[i]

    def _first_records(self, requests: set[tuple[str, int, int]], lso: dict[tuple[str, int], int]
                       ) -> dict[tuple[str, int, int], tuple[str, int | None, int | None, str | None]]:
        """(topic, partition, offset) -> (lookup, first data offset, its timestamp ms, note).

        Cache: a data record found at or after an offset is final (it was below the LSO when read); "no data
        record up to offset E" (EOF at E) stays true while the LSO has not passed E. Topics the principal may
        not read are retried once a minute."""
        out: dict[tuple[str, int, int], tuple[str, int | None, int | None, str | None]] = {}
        todo: dict[tuple[str, int], list[int]] = defaultdict(list)
        now = time.monotonic()
        for t, p, o in sorted(requests):
            hit = self._cache.get((t, p, o)) if self.use_cache else None
            denied = self._denied.get(t)
            if hit is not None and (hit[0] == LOOKUP_FOUND or lso[(t, p)] <= hit[1]):
                self._cache.move_to_end((t, p, o))
                out[(t, p, o)] = (hit[0], hit[1], hit[2], None) if hit[0] == LOOKUP_FOUND else (
                    LOOKUP_EMPTY, None, None, None)
            elif denied is not None and denied[0] > now:
                out[(t, p, o)] = (LOOKUP_UNKNOWN, None, None, denied[1])
            else:
                todo[(t, p)].append(o)
        self._reads = sum(len(v) for v in todo.values())
        if not todo:
            return out
        rounds: list[list[tuple[str, int, int]]] = []
        for (t, p), offsets in todo.items():
            for i, o in enumerate(offsets):
                if i == len(rounds):
                    rounds.append([])
                rounds[i].append((t, p, o))
        # a worker (one reader consumer each) takes every n-th round
        n = min(self.max_readers, len(rounds))
        deadline = time.monotonic() + self.read_timeout
        futures = [self._pool.submit(self._read_rounds, self._reader(i), rounds[i::n], deadline)
                   for i in range(n)]
        for f in futures:
            for key, (kind, off, ts, note) in f.result().items():
                if kind == LOOKUP_FOUND:
                    out[key] = (LOOKUP_FOUND, off, ts, None)
                    value = (LOOKUP_FOUND, off, ts)
                elif kind == LOOKUP_EMPTY:  # EOF at `off`: no committed data record in [key offset, off)
                    out[key] = (LOOKUP_EMPTY, None, None, None)
                    value = (LOOKUP_EMPTY, off, None)
                else:
                    out[key] = (LOOKUP_UNKNOWN, None, None, note)
                    if note and "AUTHORIZATION" in note:
                        self._denied[key[0]] = (time.monotonic() + 60.0, note)
                    continue
                if self.use_cache:
                    self._cache[key] = value
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    @staticmethod
    def _read_rounds(c, rounds, deadline):
        out = {}
        for rnd in rounds:
            out.update(Collector._read_round(c, rnd, deadline))
        return out

    @staticmethod
    def _read_round(c, rnd: list[tuple[str, int, int]], deadline: float):
        """Assign each partition at its offset; the first data record (read_committed: markers and aborted
        records are skipped) or EOF answers it: (found, offset, timestamp ms, None), (empty, EOF offset, None,
        None), or (unknown, None, None, why) when the partition cannot be read (not authorized, ...)."""
        start = {(t, p): o for t, p, o in rnd}
        pending = set(start)
        out: dict[tuple[str, int, int], tuple[str, int | None, int | None, str | None]] = {}
        paused: list[TopicPartition] = []
        c.assign([TopicPartition(t, p, o) for t, p, o in rnd])
        try:
            while pending and time.monotonic() < deadline:
                msgs = c.consume(10_000, min(0.05, max(0.0, deadline - time.monotonic())))
                done: list[tuple[str, int]] = []
                for m in msgs:
                    err = m.error()
                    key = (m.topic(), m.partition())
                    if err is not None and err.code() != KafkaError._PARTITION_EOF:
                        # a topic-level error (not authorized, unknown topic) answers every pending partition
                        # of that topic; client-level errors (no topic) are transient: keep waiting
                        if m.topic() is None:
                            continue
                        hit = [k for k in pending if k[0] == m.topic() and (m.partition() in (None, -1)
                                                                             or k[1] == m.partition())]
                        for k in hit:
                            out[(k[0], k[1], start[k])] = (LOOKUP_UNKNOWN, None, None, _err_text(err))
                        done += hit
                        pending.difference_update(hit)
                        continue
                    if key not in pending:
                        continue
                    if err is not None:  # EOF: no committed data record between the offset and the end
                        out[(key[0], key[1], start[key])] = (LOOKUP_EMPTY, m.offset(), None, None)
                    else:
                        if m.offset() < start[key]:
                            continue
                        ts_type, ts = m.timestamp()
                        out[(key[0], key[1], start[key])] = (LOOKUP_FOUND, m.offset(), ts if ts_type != 0 else None,
                                                             None)
                    pending.discard(key)
                    done.append(key)
                if done and pending:
                    tps = [TopicPartition(t, p) for t, p in done]
                    c.pause(tps)
                    paused += tps
        finally:
            if paused:
                c.resume(paused)  # a pause outlives unassign: the next round may assign them again
            c.unassign()
        return out
