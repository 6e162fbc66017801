"""The deconfliction service: our and the partners' air plans and tracks in, alerts and the engine's state out, in
one transaction per batch with the consumed offsets (exactly once with its inputs).

A thin Kafka service around the pure engine (:class:`~consumers.deconfliction.engine.State`), in the shape of the
forwarder and the ingress guard and with their parts (:class:`~consumers.shell.txn.Transactions`,
:mod:`~consumers.shell.faults`, ``in_records``, the forwarder's :class:`~consumers.shell.codec.InputDecoder`
for our records and the partner-origin ones). Read top to bottom:

    start            ->  the alert encoder: schemas/DeconflictionAlert.avsc looked up under
                         liaison.internal.deconfliction.alert-value (registered by `liaison schemas register`;
                         never auto-registered here)
                     ->  consumer (read_committed, group liaison-deconflict, static member) and transactional producer
                         (transactional.id liaison-deconflict-<instance>); init_transactions fences a previous
                         instance with the same id and aborts its open transaction
                     ->  the state rebuilt: liaison.deconfliction.state read (read_committed) to its end, the
                         entries of this group (key "<group>/<entry>") -> State.from_changelog
    consume a batch  ->  decode (InputDecoder: ours "AirTrack", a partner's "RUS/AirTrack"); undecodable records
                         are counted and skipped (their offsets committed); the registry away: rewind, retry later
                     ->  State.step((source, record) pairs, now_ms): emissions and the changelog of what changed
                     ->  one transaction: the alerts (Avro, Confluent framing, key alert_id) to
                         liaison.internal.deconfliction.alert, the changed entries (JSON, key "<group>/<entry>",
                         None: a tombstone) to the compacted state topic, the consumed offsets; commit.
                         Aborted: the in-memory state goes back to what was committed (a mirror of the committed
                         entries, no Kafka read), rewind, the batch again after a backoff
    idle             ->  every ``tick_s`` a step without records (tracks expire, passed conflicts clear), in a
                         transaction of its own when it changed anything (no offsets)

Time: a track is placed by its own report time (``AirTrack.time``), a plan by its ETAs; ``now_ms``, the engine's
clock (look-ahead start, track expiry, passed alerts), is the wall clock, never going backwards within a run.

One instance: the picture is global (every pair of ours against every partner's), so the inputs are never split
between members; a second instance with the same transactional.id fences the first; one with another instance
name or group would keep a picture of its own (state keys are per group).

Exactly once: the state entries, the alerts and the offsets commit together or not at all. After a kill -9 the next
instance's init_transactions aborts the open transaction, the state is what the last commit left and consumption
resumes at the offsets committed with it: the alerts of the aborted batch were never visible, and are made again
(from the same state and records) once. An alert id made again may differ (it includes the clock): only the
committed one is ever seen.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

import schemas
from consumers.deconfliction.alerts import SCHEMA_PATH as DRAFT_SCHEMA_PATH
from consumers.deconfliction.alerts import alert_record
from consumers.deconfliction.engine import State
from consumers.deconfliction.lifecycle import Emission
from consumers.deconfliction.params import Params
from consumers.shell.codec import DecodeError, InputDecoder, RegistryUnavailable
from consumers.shell.faults import FATAL, Backoff, ClientErrors, ForwarderFault, describe, sleep_unless
from consumers.shell.clients import INIT_TRANSACTIONS_S, close_clients, rewind
from consumers.shell.records import InRecord, OutRecord
from consumers.shell.schema_cache import SchemaCache
from consumers.shell.records import in_records
from consumers.shell.txn import Transactions
from core import kafka, serde
from core.logs import get_logger
from core.settings import Settings, get_settings
from core.topics import topic_for

__all__ = ["ALERT_TOPIC", "ALERT_TYPE", "Batch", "DECONFLICT", "Deconflictor", "GROUP", "INPUT_TOPICS",
           "MissingAlertSchema", "ORIGIN_AIR_PATTERN", "STATE_TOPIC", "Stats", "alert_outputs", "alert_schema_text",
           "build_batch", "decode_batch", "next_offsets", "read_state", "state_entries", "state_outputs"]

log = get_logger("liaison.deconflict")

ALERT_TYPE = "DeconflictionAlert"


def _alert_topic() -> str:
    try:
        return topic_for(ALERT_TYPE)
    except Exception:  # noqa: BLE001 - core.topics without the type yet: the name it will have
        return "liaison.internal.deconfliction.alert"


#: where the alerts go (internal: the forwarder releases them to our air component and to each partner)
ALERT_TOPIC = _alert_topic()
try:
    from core.topics import DECONFLICTION_STATE_TOPIC as STATE_TOPIC
except ImportError:  # core.topics without it yet
    STATE_TOPIC = "liaison.deconfliction.state"
#: our plans and tracks
INPUT_TOPICS: tuple[str, ...] = (topic_for("AirMissionPlan"), topic_for("AirTrack"))
#: every partner's accepted plans and tracks (librdkafka regex subscription: a partner added later is read without
#: a restart, at the consumer's next metadata refresh)
ORIGIN_AIR_PATTERN = r"^liaison\.origin\.[a-z]+\.air\.(mission-plan|track)$"
#: the service's principal (deploy/acls.yaml), consumer group and transactional.id prefix
DECONFLICT = "deconflict"
GROUP = "liaison-deconflict"
TXN_PREFIX = "liaison-deconflict-"
MAX_RECORD_BYTES = 1_000_000
REGISTRY_TIMEOUT_S, REGISTRY_RETRIES = 5.0, 1
RESTORE_TIMEOUT_S = 300.0


class MissingAlertSchema(Exception):
    """The alert subject holds no version of our alert schema: `liaison schemas register` has not run."""


def alert_schema_text() -> str:
    """schemas/DeconflictionAlert.avsc once it is a message type; the engine's draft until then."""
    if ALERT_TYPE in schemas.MESSAGE_TYPES:
        return schemas.schema_str(ALERT_TYPE)
    return DRAFT_SCHEMA_PATH.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------- pure pieces


@dataclass
class Stats:
    records: int = 0           # input records consumed (committed)
    skipped: int = 0           # undecodable, or unusable by the engine
    stale: int = 0             # older than what the picture holds of the same sortie or track
    expired: int = 0           # tracks dropped for age
    state_entries: int = 0     # changelog records written (tombstones included)
    tombstones: int = 0
    sources: Counter = field(default_factory=Counter)   # source ("AirTrack", "RUS/AirMissionPlan") -> records
    alerts: Counter = field(default_factory=Counter)    # (status, kind, partner) -> alerts
    pairs: int = 0             # pairs the engine looked at
    released_from_hold: int = 0  # always 0: Transactions' "batch begun" line reads it

    def add(self, other: Stats) -> None:
        for name in ("records", "skipped", "stale", "expired", "state_entries", "tombstones", "pairs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.sources.update(other.sources)
        self.alerts.update(other.alerts)

    def by_status(self) -> dict[str, int]:
        out: Counter = Counter()
        for (status, _kind, _partner), n in self.alerts.items():
            out[status] += n
        return dict(out)


@dataclass
class Batch:
    """One step's transaction, in the shape :class:`~consumers.shell.txn.Transactions` runs: produce
    ``outputs`` in order, commit ``offsets`` (next offset per input partition) with them."""

    outputs: list[OutRecord] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    emissions: list[Emission] = field(default_factory=list)
    changelog: dict[str, dict | None] = field(default_factory=dict)
    now_ms: int = 0
    #: the oldest and newest record timestamps of the batch (ms; None: no records / no timestamps)
    oldest_ms: int | None = None
    newest_ms: int | None = None

    @property
    def empty(self) -> bool:
        return not self.outputs and not self.offsets


def next_offsets(batch: Iterable[InRecord]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the offset after the last record of the batch there (what the commit says)."""
    out: dict[tuple[str, int], int] = {}
    for r in batch:
        k = (r.topic, r.partition)
        if r.offset + 1 > out.get(k, -1):
            out[k] = r.offset + 1
    return out


def decode_batch(batch: list[InRecord], decoder) -> tuple[list[tuple[str, dict]], list[tuple[InRecord, str, str]]]:
    """(source, record) pairs in batch order, and the records that did not decode: (record, stage, error).
    :class:`RegistryUnavailable` goes up (the batch is done again later, nothing is skipped for it)."""
    pairs: list[tuple[str, dict]] = []
    bad: list[tuple[InRecord, str, str]] = []
    for r in batch:
        try:
            pairs.append(decoder.decode(r.topic, r.value))
        except DecodeError as e:
            bad.append((r, e.stage, str(e)[:300]))
    return pairs, bad


def _json(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def state_outputs(group: str, changelog: Mapping[str, dict | None], topic: str = STATE_TOPIC) -> list[OutRecord]:
    """The changelog as state-topic records: key "<group>/<entry key>", value JSON, None a tombstone; sorted by key
    (a replay of the same step writes the same records in the same order)."""
    return [OutRecord(topic, f"{group}/{k}".encode(), None if v is None else _json(v), None)
            for k, v in sorted(changelog.items())]


def alert_outputs(emissions: Iterable[Emission], now_ms: int, params: Params, encoder,
                  topic: str = ALERT_TOPIC) -> list[OutRecord]:
    """Each emission as a framed DeconflictionAlert record, key alert_id, no headers, stamped by the producer."""
    return [OutRecord(topic, e.alert.alert_id.encode(), encoder.encode(alert_record(e, now_ms, params)), None)
            for e in emissions]


def state_entries(records: Iterable[tuple[bytes | None, bytes | None]], group: str) -> dict[str, dict]:
    """State-topic records in log order -> the group's live entries (the last value of a key wins, a tombstone
    removes it); other groups' keys and unreadable values are ignored."""
    prefix = f"{group}/".encode()
    out: dict[str, dict] = {}
    for key, value in records:
        if not key or not key.startswith(prefix):
            continue
        entry = key[len(prefix):].decode(errors="replace")
        if value is None:
            out.pop(entry, None)
            continue
        try:
            out[entry] = json.loads(value)
        except ValueError:
            log.warning("state entry unreadable, ignored", key=entry)
    return out


def apply_changelog(entries: dict[str, dict], changelog: Mapping[str, dict | None]) -> None:
    for k, v in changelog.items():
        if v is None:
            entries.pop(k, None)
        else:
            entries[k] = v


def build_batch(state: State, batch: list[InRecord], decoder, now_ms: int, params: Params, encoder, group: str,
                alert_topic: str = ALERT_TOPIC, state_topic: str = STATE_TOPIC) -> tuple[Batch, list]:
    """One step (``state`` changes in place): decode, step, the alert and state records, the offsets. Returns the
    batch and the records that did not decode."""
    pairs, bad = decode_batch(batch, decoder)
    result = state.step(pairs, now_ms)
    s = Stats(records=len(batch), skipped=len(bad) + result.stats["skipped"], stale=result.stats["stale"],
              expired=result.stats["expired"], pairs=result.stats["pairs"])
    s.sources.update(src for src, _ in pairs)
    for e in result.emissions:
        s.alerts[(e.status, e.alert.conflict.kind, e.alert.conflict.partner)] += 1
    states = state_outputs(group, result.changelog, state_topic)
    s.state_entries, s.tombstones = len(states), sum(1 for o in states if o.value is None)
    stamps = [r.timestamp for r in batch if r.timestamp]
    out = Batch(alert_outputs(result.emissions, now_ms, params, encoder, alert_topic) + states, next_offsets(batch),
                s, result.emissions, result.changelog, now_ms, min(stamps, default=None), max(stamps, default=None))
    return out, bad


def read_state(consumer, topic: str = STATE_TOPIC, timeout: float = RESTORE_TIMEOUT_S) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of ``topic`` from the beginning to its end now, in log order per partition. Make the
    consumer read_committed with enable.partition.eof (the end is the last stable offset); it is assigned here."""
    md = consumer.list_topics(topic, timeout=30)
    meta = md.topics.get(topic)
    if meta is None or meta.error is not None:
        raise KafkaException(meta.error if meta is not None else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    parts = sorted(meta.partitions)
    ends: dict[int, int] = {}
    for p in parts:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
        if high > low:
            ends[p] = high
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    pending = set(ends)
    out: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: partitions {sorted(pending)} not read to their end in {timeout:.0f} s")
        for m in consumer.consume(1000, 0.5):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(m.partition())
                elif err.fatal():
                    raise KafkaException(err)
                continue
            out.append((m.key(), m.value()))
            if m.offset() >= ends.get(m.partition(), 0) - 1:
                pending.discard(m.partition())
        if pending:
            for tp in consumer.position([TopicPartition(topic, p) for p in pending]):
                if tp.offset >= ends[tp.partition]:
                    pending.discard(tp.partition)
    return out


# ---------------------------------------------------------------------------------------------- the service


class Deconflictor:
    def __init__(self, settings: Settings | None = None, instance: str = "main", group_id: str = GROUP,
                 params: Params | None = None, batch_size: int = 5000, tick_s: float = 1.0,
                 principal: str = DECONFLICT, consumer_conf: dict | None = None, producer_conf: dict | None = None,
                 cache_path: Path | None = None, alert_topic: str = ALERT_TOPIC, state_topic: str = STATE_TOPIC):
        self.settings = settings or get_settings()
        self.instance = instance
        self.transactional_id = f"{TXN_PREFIX}{instance}"
        self.group_id = group_id
        self.params = params or Params()
        self.batch_size, self.tick_s = batch_size, tick_s
        self.alert_topic, self.state_topic = alert_topic, state_topic
        self.client = serde.registry_client(self.settings, principal=principal, timeout=REGISTRY_TIMEOUT_S,
                                            retries=REGISTRY_RETRIES)
        self.cache = SchemaCache(cache_path or Path(self.settings.state_dir) / "deconflict-cache" / f"{instance}.json",
                                 self.settings.registry_url())
        self.decoder = InputDecoder(self.client, validate=False, cache=self.cache)  # the engine checks what it uses
        self.encoder = self._alert_encoder()
        self.decoder.known_ids.add(self.encoder.schema_id)
        self.state = State(self.params)
        self.committed: dict[str, dict] = {}  # the state entries as committed (the abort path rebuilds from them)
        self.totals = Stats()
        self.restored_entries = 0
        self._stop = False
        self._abort_backoff = Backoff(0.5, 30.0)
        self.listeners: list = []        # called with each committed Batch
        self.assigned: set[tuple[str, int]] = set()
        self.loop_at = self.last_progress = time.monotonic()
        self.last_commit: float | None = None
        self._last_now = 0
        self._stepped_at = 0.0
        self.client_errors = ClientErrors(log, self.transactional_id)
        self.error_listeners = self.client_errors.listeners
        self.consumer = kafka.consumer(self.group_id, {
            "isolation.level": "read_committed", "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "group.instance.id": self.transactional_id, "session.timeout.ms": 30000,
            "topic.metadata.refresh.interval.ms": 60000,
            "error_cb": self.client_errors.callback("consumer"), **(consumer_conf or {})}, self.settings,
            principal=principal)
        self.txn = Transactions(None, self.consumer.consumer_group_metadata, stopping=lambda: self._stop,
                                transactional_id=self.transactional_id)
        self.producer = kafka.producer({
            "transactional.id": self.transactional_id, "linger.ms": 5, "transaction.timeout.ms": 60000,
            "message.max.bytes": MAX_RECORD_BYTES, "on_delivery": self.txn.delivery_failed,
            "delivery.report.only.error": True, "error_cb": self.client_errors.callback("producer"),
            **(producer_conf or {})}, self.settings, principal=principal)
        self.txn.producer = self.producer
        try:
            self.producer.init_transactions(INIT_TRANSACTIONS_S)
        except Exception as e:  # noqa: BLE001 - KafkaException: brokers away (timeout) or fatal
            err = e.args[0] if e.args and hasattr(e.args[0], "code") else None
            self._close_clients()
            raise ForwarderFault(FATAL, "producer", f"init_transactions: {describe(err) if err else e}", err) from None
        # after init_transactions: a fenced predecessor's open transaction is aborted, its commits are all there
        started = time.monotonic()
        try:
            self._restore(principal, consumer_conf)
        except Exception as e:  # noqa: BLE001 - unreadable topic, timeout: no picture to go on from
            self._close_clients()
            raise ForwarderFault(FATAL, "consumer", f"state not restored from {self.state_topic}: {e}") from None
        log.info("state restored", entries=self.restored_entries, objects=len(self.state.picture.objects),
                 open_alerts=len(self.state.alerts), took_s=round(time.monotonic() - started, 2),
                 state_topic=self.state_topic, group=self.group_id, transactional_id=self.transactional_id)

    def _alert_encoder(self) -> serde.Encoder:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        subject = serde.value_subject(self.alert_topic)
        try:
            return serde.lookup_encoder(subject, alert_schema_text(), self.client)
        except SchemaRegistryError as e:
            if e.http_status_code == 404:
                raise MissingAlertSchema(f"{subject} holds no version of the DeconflictionAlert schema "
                                         f"(run `liaison schemas register`)") from None
            raise RegistryUnavailable(f"{subject}: registry answered {e.http_status_code}: {e.error_message}",
                                      1000) from None
        except Exception as e:  # noqa: BLE001 - connection errors, timeouts, TLS
            raise RegistryUnavailable(f"{subject}: registry unreachable: {type(e).__name__}: {e}", 1000) from None

    def _restore(self, principal: str, conf: dict | None) -> None:
        c = kafka.consumer(f"{self.group_id}-restore", {
            "isolation.level": "read_committed", "enable.partition.eof": True, "enable.auto.commit": False,
            **(conf or {})}, self.settings, principal=principal)
        try:
            records = read_state(c, self.state_topic)
        finally:
            c.close()
        self.committed = state_entries(records, self.group_id)
        self.restored_entries = len(self.committed)
        self.state = State.from_changelog(self.committed, self.params)

    # ------------------------------------------------------------------ one step

    def _now_ms(self) -> int:
        self._last_now = max(self._last_now, int(time.time() * 1000))
        return self._last_now

    def _step(self, msgs: list) -> None:
        try:
            batch = in_records(msgs, self.client_errors.event)
        except BaseException:
            self._rewind(msgs)
            raise
        try:
            result, bad = build_batch(self.state, batch, self.decoder, self._now_ms(), self.params, self.encoder,
                                      self.group_id, self.alert_topic, self.state_topic)
        except RegistryUnavailable as e:
            # decoding comes before the step: the state is untouched
            self._rewind(msgs)
            log.warning("registry unavailable, batch postponed", error=str(e), retry_in_ms=e.retry_ms)
            sleep_unless(lambda: self._stop, e.retry_ms / 1000)
            return
        except BaseException:
            self._rollback()
            self._rewind(msgs)
            raise
        self._stepped_at = time.monotonic()
        if result.empty:
            return
        outcome = self.txn.run(result)
        if outcome.committed:
            self._committed(result, bad)
            return
        self._rollback()
        if outcome.refused:
            i, err = outcome.refused[0]
            raise ForwarderFault(FATAL, "producer", f"{result.outputs[i].topic} refused a record: {describe(err)}",
                                 err)
        delay = self._abort_backoff.next()
        log.warning("transaction aborted, batch will be done again", error=outcome.retry, records=len(batch),
                    retry_in_s=delay)
        self._rewind(msgs)
        sleep_unless(lambda: self._stop, delay)

    def _rollback(self) -> None:
        """The in-memory state back to the last commit."""
        self.state = State.from_changelog(self.committed, self.params)

    def _committed(self, result: Batch, bad: list) -> None:
        self._abort_backoff.reset()
        self.last_commit = self.last_progress = time.monotonic()
        apply_changelog(self.committed, result.changelog)
        self.totals.add(result.stats)
        for r, stage, error in bad:
            log.warning("record skipped", topic=r.topic, partition=r.partition, offset=r.offset, stage=stage,
                        error=error)
        for e in result.emissions:
            a = e.alert
            log.info("alert", alert_id=a.alert_id, revision=a.revision, status=e.status, reason=e.reason,
                     kind=a.conflict.kind, partner=a.conflict.partner, ours_callsign=a.ours.callsign,
                     theirs_callsign=a.theirs.callsign)
        s = result.stats
        if s.records or result.emissions:
            log.info("batch committed", records=s.records, skipped=s.skipped, stale=s.stale, expired=s.expired,
                     alerts=s.by_status(), state_entries=s.state_entries, objects=len(self.state.picture.objects),
                     open_alerts=len(self.state.alerts))
        for listener in self.listeners:
            listener(result)

    def _rewind(self, msgs: list) -> None:
        rewind(self.consumer, msgs)

    # ------------------------------------------------------------------ what metrics.status reads

    @property
    def fault(self) -> ForwarderFault | None:
        return self.client_errors.fault

    @property
    def paused(self) -> dict:
        return {}

    @property
    def registry_paused(self) -> dict:
        return {}

    def _assigned(self, consumer, partitions) -> None:
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("partitions assigned", partitions=len(self.assigned),
                 topics=sorted({t for t, _p in self.assigned}))

    def _revoked(self, consumer, partitions) -> None:
        for tp in partitions:
            self.assigned.discard((tp.topic, tp.partition))

    # ------------------------------------------------------------------ main loop

    def stop(self) -> None:
        self._stop = True

    def run(self, max_idle: float | None = None, duration: float | None = None,
            poll_timeout: float = 0.2) -> Stats:
        self.consumer.subscribe(list(INPUT_TOPICS) + [ORIGIN_AIR_PATTERN], on_assign=self._assigned,
                                on_revoke=self._revoked, on_lost=self._revoked)
        log.info("deconfliction started", transactional_id=self.transactional_id, group=self.group_id,
                 topics=list(INPUT_TOPICS), pattern=ORIGIN_AIR_PATTERN, alert_topic=self.alert_topic,
                 state_topic=self.state_topic, lateral_nm=round(self.params.lateral_m / 1852, 3),
                 vertical_ft=self.params.vertical_ft, lookahead_s=self.params.lookahead_s,
                 track_max_age_s=self.params.track_max_age_s, objects=len(self.state.picture.objects),
                 open_alerts=len(self.state.alerts))
        started = last_data = time.monotonic()
        try:
            while not self._stop:
                self.loop_at = time.monotonic()
                msgs = self.consumer.consume(self.batch_size, poll_timeout)
                if self.client_errors.fault is not None:
                    raise self.client_errors.fault
                now = time.monotonic()
                if duration is not None and now - started >= duration:
                    self._stop = True
                if msgs:
                    last_data = now
                    self._step(msgs)
                    continue
                self.last_progress = now  # caught up
                if now - self._stepped_at >= self.tick_s:
                    self._step([])  # the clock alone: expiry, passed conflicts
                if max_idle is not None and now - last_data >= max_idle:
                    break
        except ForwarderFault as f:
            self.client_errors.fault = f
            raise
        finally:
            self.close()
        return self.totals

    def _close_clients(self) -> None:
        close_clients({"consumer": self.consumer.close}, self.producer, self.txn.stuck, log)

    def close(self) -> None:
        self._close_clients()
        log.info("deconfliction stopped", records=self.totals.records, skipped=self.totals.skipped,
                 alerts=self.totals.by_status(), objects=len(self.state.picture.objects),
                 open_alerts=len(self.state.alerts))
