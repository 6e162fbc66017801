"""``liaison simulate partner``: the simulated partner published on the broker, as the partner's own principal.

The one module of :mod:`producers.simulate` that talks to Kafka and the registry. As the partner would:

1. it authenticates as ``partner-<code>`` (SCRAM password from the credentials folder of the servers, as every
   client of the project: :mod:`core.settings`), to the broker and to the registry gateway;
2. it reads, for each message type, the latest schema of its inbound subject
   (``liaison.inbound.<code>.<domain>.<type>-value``, registered by ``liaison schemas register``; the gateway lets
   a partner GET its own inbound subjects) and encodes with it; it also reads the ids of its own feed subjects
   (one variant of the wrong-schema-id input);
3. it publishes :class:`~producers.simulate.partner.PartnerSimulator`'s records on its inbound topics with an
   idempotent producer (its ACLs give WRITE on ``liaison.inbound.<code>.`` only; no transactional id), batches
   bounded to 64 KiB so that a batch of small records never exceeds the topics' 128 KiB. Records meant to be
   refused by the broker (``oversized_broker``) go through a second, non-idempotent producer, so that their
   refusal (MSG_SIZE_TOO_LARGE) never touches the sequence of the good records.

The summary counts, per type, the good records the broker acknowledged, per class the bad ones, and the
broker's refusals.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import typer
from confluent_kafka import KafkaError
from confluent_kafka.schema_registry.error import SchemaRegistryError

import schemas
from core import kafka, serde
from core.settings import Settings, get_settings
from core.topics import inbound_topic, partner_topic, topic_for
from producers.simulate.partner import BAD_CLASSES, PARTNERS, Crossing, Format, Ours, Outgoing, PartnerSimulator
from schemas.agreement import is_exchanged

__all__ = ["PartnerRun", "inbound_formats", "run_partner", "partner_command"]

#: Batches of the partner's producer: below the inbound topics' max.message.bytes (128 KiB), so a batch of good
#: records is never refused for the size of its neighbours.
BATCH_BYTES = 64 * 1024


@dataclass
class PartnerRun:
    """What a run sent: acknowledged good records per type, bad per class, refusals by the broker per class."""

    partner: str
    principal: str
    good: Counter = field(default_factory=Counter)
    bad: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)     # class -> refused by the broker (MSG_SIZE_TOO_LARGE)
    errors: Counter = field(default_factory=Counter)      # (class or type, error name) -> other delivery errors
    crossings: list[Crossing] = field(default_factory=list)
    elapsed: float = 0.0
    produced: int = 0
    skipped_types: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        out = [f"simulated partner {self.partner} as principal {self.principal}: {self.produced} record(s) in "
               f"{self.elapsed:.1f}s"]
        for name in schemas.MESSAGE_TYPES:
            if self.good[name]:
                out.append(f"  good {name:22} {self.good[name]:7d}  -> {inbound_topic(self.partner, name)}")
        out.append(f"  good {'total':22} {sum(self.good.values()):7d}")
        for cls in BAD_CLASSES:
            if self.bad[cls] or self.refused[cls]:
                refused = f"  refused by the broker: {self.refused[cls]}" if self.refused[cls] else ""
                out.append(f"  bad  {cls:22} {self.bad[cls]:7d}{refused}")
        out.append(f"  bad  {'total':22} {sum(self.bad.values()):7d}  (sent; header sim.bad=<class>)")
        out.append(f"  refused by the broker (not sent): {sum(self.refused.values())}"
                   + (" (MSG_SIZE_TOO_LARGE)" if self.refused else ""))
        for (what, name), n in sorted(self.errors.items()):
            out.append(f"  delivery failed: {what}: {name} x{n}")
        out.append(f"  sorties planned to cross ours: {len(self.crossings)}")
        if self.skipped_types:
            out.append(f"  not sent (no inbound subject): {', '.join(self.skipped_types)}")
        return out


def inbound_formats(partner: str, client) -> tuple[dict[str, Format], dict[str, int], tuple[str, ...]]:
    """(inbound format per type, id of the partner's own feed subject per type, types without an inbound subject),
    read from the registry with the partner's own credentials."""
    formats: dict[str, Format] = {}
    feed_ids: dict[str, int] = {}
    missing = []
    for name in schemas.MESSAGE_TYPES:
        if not is_exchanged(name):  # a partner never sends its deconfliction alerts (each side computes its own)
            continue
        try:
            latest = client.get_latest_version(serde.value_subject(inbound_topic(partner, name)))
        except SchemaRegistryError as e:
            if e.http_status_code == 404:
                missing.append(name)
                continue
            raise
        formats[name] = Format(latest.schema_id, json.loads(latest.schema.schema_str))
        try:
            feed = client.get_latest_version(serde.value_subject(partner_topic(partner, topic_for(name))))
            feed_ids[name] = feed.schema_id
        except SchemaRegistryError:
            pass
    return formats, feed_ids, tuple(missing)


def run_partner(partner: str, rate: float, count: int, seed: int = 1, *, bad_share: float = 0.1,
                cross_share: float = 0.3, ours: Ours | None = Ours(), start: datetime | None = None,
                paced: bool = True, settings: Settings | None = None, stop: threading.Event | None = None,
                flush_timeout: float = 60.0) -> PartnerRun:
    """Publish ``count`` records of the simulated ``partner`` at ``rate``/s (``paced``: in real time) as its
    principal; returns what the broker acknowledged and refused. ``start``: time of the first record (default:
    now, or for an unpaced run now minus its span, so that no record is created in the future)."""
    code = partner.upper()
    settings = settings or get_settings()
    principal = kafka.partner_principal(code)
    client = serde.registry_client(settings, principal=principal)
    formats, feed_ids, missing = inbound_formats(code, client)
    if start is None:
        start = datetime.now(timezone.utc)
        if not paced:
            start -= timedelta(seconds=count / rate)
    sim = PartnerSimulator(code, formats, seed, start, feed_ids=feed_ids, bad_share=bad_share,
                           cross_share=cross_share, ours=ours)
    result = PartnerRun(code, principal, skipped_types=missing)
    producer = kafka.producer({"batch.size": BATCH_BYTES, "linger.ms": 5}, settings, principal)
    oversize = None

    def delivered(out: Outgoing):
        def callback(err, _msg):
            what = out.bad or out.type_name
            if err is None:
                (result.bad if out.bad else result.good)[what] += 1
            elif err.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                result.refused[what] += 1
            else:
                result.errors[(what, err.name())] += 1
        return callback

    t0 = time.monotonic()
    stream = sim.events(rate, count)
    try:
        for out in stream:
            if stop is not None and stop.is_set():
                break
            if paced:
                delay = t0 + out.offset - time.monotonic()
                if delay > 0:
                    if stop is not None:
                        if stop.wait(delay):
                            break
                    else:
                        time.sleep(delay)
            target = producer
            if out.refused_by_broker:
                if oversize is None:
                    oversize = kafka.producer({"enable.idempotence": False, "acks": "all", "retries": 0,
                                               "compression.type": "none"}, settings, principal)
                target = oversize
            while True:
                try:
                    target.produce(out.topic, out.value, out.key, headers=list(out.headers),
                                   on_delivery=delivered(out))
                    break
                except BufferError:
                    target.poll(0.1)
            result.produced += 1
            target.poll(0)
    finally:
        deadline = time.monotonic() + flush_timeout
        for p in (producer, oversize):
            while p is not None and p.flush(max(0.1, deadline - time.monotonic())) and time.monotonic() < deadline:
                pass
        result.elapsed = time.monotonic() - t0
        result.crossings = list(stream.crossings)
    return result


def partner_command(
        partner: str = typer.Option("RUS", "--partner", "-p", help=f"the partner to simulate: {', '.join(PARTNERS)}"),
        rate: float = typer.Option(50.0, help="records per second"),
        duration: float = typer.Option(10.0, help="seconds (ignored with --count)"),
        count: int = typer.Option(None, "--count", "-n", help="exactly this many records (default: rate x duration)"),
        seed: int = typer.Option(1, help="same seed, same records"),
        bad_share: float = typer.Option(0.1, help="share of bad records (0..1), every class in turn"),
        cross_share: float = typer.Option(0.3, help="share of new sorties planned to cross one of ours (0..1)"),
        ours_seed: int = typer.Option(1, help="seed of our simulator run whose sorties are crossed"),
        ours_rate: float = typer.Option(100.0, help="rate of our simulator run whose sorties are crossed"),
        ours_components: str = typer.Option("all", help="components of our simulator run whose sorties are crossed"),
        unpaced: bool = typer.Option(False, "--unpaced", help="publish as fast as possible")) -> None:
    """Publish a simulated partner's stream on its inbound topics, as the partner's principal.

    As partner-<code>: air plans and tracks (some crossing our sorties), maritime tracks, strike results, group
    locations, foreign-fighter reports, logistics observations, and a share of bad input of every class the
    ingress guard checks (header sim.bad=<class>); prints what was sent per type and class, and what the broker
    refused."""
    code = partner.upper()
    if code not in PARTNERS:
        typer.echo(f"error: unknown partner {partner!r}; one of {', '.join(PARTNERS)}", err=True)
        raise typer.Exit(2)
    if not (rate > 0) or not (0 <= bad_share <= 1) or not (0 <= cross_share <= 1):
        typer.echo("error: --rate must be positive, --bad-share and --cross-share within 0..1", err=True)
        raise typer.Exit(2)
    n = count if count is not None else round(rate * duration)
    try:
        result = run_partner(code, rate, n, seed, bad_share=bad_share, cross_share=cross_share,
                             ours=Ours(ours_components, ours_seed, ours_rate), paced=not unpaced)
    except SchemaRegistryError as e:
        typer.echo(f"error: the registry refused partner-{code.lower()}: {e}", err=True)
        raise typer.Exit(1)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    for line in result.lines():
        typer.echo(line)
    if result.errors:
        print(f"error: {sum(result.errors.values())} record(s) not delivered (see above)", file=sys.stderr)
        raise typer.Exit(1)
