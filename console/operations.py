"""The operations principal's view: the two audits, the reciprocity ledger, lag and the services' health. I/O.

One :class:`OperationsReader` per operations session, all with the credentials that signed in:

* the decision and ingress audits from ``since_s`` ago (read_committed) -> :class:`~console.ops_model.Outcomes`;
* the ledger's changelog from its beginning -> :class:`~operations.ledger.evaluate.LedgerState` -> its rows;
* the lag monitor's evaluation (:class:`operations.lag.monitor.Monitor`, polled every ``lag_interval_s``) ->
  :class:`~console.ops_model.LagHistory`;
* each service's /healthz and /readyz (the forwarder's, the guards': ``--health NAME=URL``).

The operations principal (deploy/acls.yaml) reads the audits and the ledger, and may describe the groups and
topics the lag monitor watches; it reads no data topic, so the operations view shows counts, never records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Callable

import httpx
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from core.audit import decisions_of
from core.logs import get_logger
from core.topics import AUDIT_TOPIC, INGRESS_AUDIT_TOPIC, LEDGER_TOPIC
from console.ops_model import LagHistory, Outcomes
from console.sessions import SignedIn, position_by_time
from operations.lag.collect import Collector
from operations.lag.monitor import Monitor
from operations.ledger.audits import AuditDecoder, RegistryAway, Unreadable
from operations.ledger.changelog import apply_records
from operations.ledger.evaluate import LedgerState, rows

__all__ = ["OperationsReader", "probe_health"]

log = get_logger("console")


def probe_health(targets: Mapping[str, str], timeout: float = 2.0) -> list[dict]:
    """Each service's /healthz and /readyz answers (status code, or the connection's error)."""
    out = []
    with httpx.Client(timeout=timeout) as client:
        for name, base in sorted(targets.items()):
            row = {"service": name, "url": base}
            for probe in ("healthz", "readyz"):
                try:
                    r = client.get(f"{base.rstrip('/')}/{probe}")
                    row[probe] = r.status_code
                    row[f"{probe}_detail"] = r.text[:300]
                except httpx.HTTPError as e:
                    row[probe] = None
                    row[f"{probe}_detail"] = f"{type(e).__name__}: {e}"[:300]
            row["healthy"] = row["healthz"] == 200
            # a service without a readiness probe (the ledger serves /healthz only): readiness unknown, not "down"
            row["ready"] = None if row["readyz"] == 404 else row["readyz"] == 200
            out.append(row)
    return out


class OperationsReader:
    def __init__(self, signed: SignedIn, since_s: float, health: Mapping[str, str] | None = None,
                 lag_interval_s: float = 5.0, clock: Callable[[], float] = time.time):
        self.signed = signed
        self.principal = signed.principal
        self.since_s = since_s
        self.health_targets = dict(health or {})
        self.lag_interval_s = lag_interval_s
        self.clock = clock
        self.outcomes = Outcomes()
        self.ledger = LedgerState()
        self.lag = LagHistory()
        self.health: list[dict] = []
        self.counts = {"audits": 0, "ledger_records": 0, "unreadable": 0}
        self.error: str | None = None
        self.lag_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._read, name="console-ops-read", daemon=True),
                         threading.Thread(target=self._watch, name="console-ops-watch", daemon=True)]

    def start(self) -> OperationsReader:
        for t in self._threads:
            t.start()
        return self

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t.is_alive() and threading.current_thread() is not t:
                t.join(10)

    def snapshot(self) -> dict:
        now = self.clock()
        with self._lock:
            return {"at": now, "outcomes": self.outcomes.snapshot(int(now * 1000)),
                    "ledger": [r.to_dict() for r in rows(self.ledger, int(now * 1000))],
                    "lag": self.lag.snapshot(), "health": list(self.health), "counts": dict(self.counts),
                    "error": self.error, "lag_error": self.lag_error}

    # ------------------------------------------------------------------ the audits and the ledger

    def _read(self) -> None:
        consumer = self.signed.consumer
        decoder = AuditDecoder(client=self.signed.registry())
        try:
            md = consumer.list_topics(timeout=15)
            audits = [TopicPartition(t, p) for t in (AUDIT_TOPIC, INGRESS_AUDIT_TOPIC) if t in md.topics
                      for p in md.topics[t].partitions]
            ledger = [TopicPartition(LEDGER_TOPIC, p) for p in (md.topics.get(LEDGER_TOPIC).partitions
                                                              if LEDGER_TOPIC in md.topics else ())]
            consumer.assign(position_by_time(consumer, audits, int((self.clock() - self.since_s) * 1000))
                            + position_by_time(consumer, ledger, None))
            while not self._stop.is_set():
                for msg in consumer.consume(500, 0.25):
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:  # shown on the page, as a feed's are
                            self.error = err.str()
                            log.warning("console operations read error", topic=msg.topic(), error=err.str())
                        continue
                    self._take(msg, decoder)
        except Exception as e:  # noqa: BLE001 - shown on the page; the server goes on
            self.error = f"{type(e).__name__}: {e}"
            log.error("console operations reader stopped", error=self.error)
        finally:
            consumer.close()

    def _take(self, msg, decoder: AuditDecoder) -> None:
        topic = msg.topic()
        with self._lock:
            if topic == LEDGER_TOPIC:
                self.counts["ledger_records"] += apply_records(self.ledger, [msg])
                return
        try:
            audit = decoder.decode(topic, msg.value())
        except (Unreadable, RegistryAway) as e:
            with self._lock:
                self.counts["unreadable"] += 1
            log.warning("console unreadable audit", topic=topic, partition=msg.partition(), offset=msg.offset(),
                        error=str(e))
            return
        with self._lock:
            self.counts["audits"] += 1
            if topic == AUDIT_TOPIC:
                self.outcomes.add_decisions(decisions_of(audit))
            else:
                self.outcomes.add_ingress(audit)

    # ------------------------------------------------------------------ lag and health

    def _watch(self) -> None:
        try:
            monitor = Monitor(Collector(settings=self.signed.settings, principal=self.principal.name),
                              interval=self.lag_interval_s)
        except (KafkaException, ValueError) as e:
            self.lag_error = str(e)
            monitor = None
        while not self._stop.is_set():
            if monitor is not None:
                try:
                    report = monitor.poll_once()
                    with self._lock:
                        self.lag.add(self.clock(), report)
                        self.lag_error = None
                except Exception as e:  # noqa: BLE001 - a failed poll is shown, the next one may succeed
                    self.lag_error = f"{type(e).__name__}: {e}"
            if self.health_targets:
                health = probe_health(self.health_targets)
                with self._lock:
                    self.health = health
            self._stop.wait(self.lag_interval_s)
