"""Topics as configuration: deploy/topics.yaml, validated, applied idempotently, drift reported."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import typer
import yaml
from confluent_kafka.admin import ConfigResource, NewTopic
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core import kafka
from core.settings import get_settings
from core.topics import (inbound_topic, origin_source, origin_topic, partner_topic, quarantine_topic,
                         recipient_topic, type_for_topic)
from schemas.agreement import is_exchanged


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Defaults(_Strict):
    partitions: int = Field(6, ge=1)
    replication_factor: int = Field(3, ge=1)
    min_insync_replicas: int = Field(2, ge=1)
    retention_ms: int = Field(604800000, ge=-1)
    cleanup_policy: str = Field("delete", pattern=r"^(delete|compact|compact,delete)$")
    #: the topic's max.message.bytes (None: the broker's default); partner feeds take this one, not their
    #: internal topic's (a view carries its envelope's headers)
    max_message_bytes: int | None = Field(None, ge=1024)


class TopicEntry(_Strict):
    name: str = Field(pattern=r"^[a-zA-Z0-9._-]{1,249}$")
    partitions: int | None = Field(None, ge=1)
    replication_factor: int | None = Field(None, ge=1)
    min_insync_replicas: int | None = Field(None, ge=1)
    retention_ms: int | None = Field(None, ge=-1)
    cleanup_policy: str | None = Field(None, pattern=r"^(delete|compact|compact,delete)$")
    max_message_bytes: int | None = Field(None, ge=1024)


class InboundDefaults(_Strict):
    partitions: int = Field(3, ge=1)
    max_message_bytes: int = Field(131072, ge=1024)


class ThirdParty(_Strict):
    """Feeds of one partner's records to another partner (liaison.partner.<partner>.origin.<origin>.*): only
    when both policies allow it (the third-party rule); none by default."""

    partner: str = Field(pattern=r"^[A-Z]{3}$")
    origin: str = Field(pattern=r"^[A-Z]{3}$")


class TopicsFile(_Strict):
    defaults: Defaults = Defaults()
    internal: list[TopicEntry] = []
    partners: list[str] = []
    inbound: InboundDefaults = InboundDefaults()
    components: list[str] = []
    third_party: list[ThirdParty] = []
    topics: list[TopicEntry] = []


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int
    retention_ms: int
    cleanup_policy: str
    max_message_bytes: int | None = None

    def configs(self) -> dict[str, str]:
        out = {"min.insync.replicas": str(self.min_insync_replicas), "retention.ms": str(self.retention_ms),
               "cleanup.policy": self.cleanup_policy}
        if self.max_message_bytes is not None:
            out["max.message.bytes"] = str(self.max_message_bytes)
        return out


def load_topics(path: Path | None = None) -> list[TopicSpec]:
    path = path or get_settings().deploy_dir / "topics.yaml"
    try:
        doc = TopicsFile.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ValueError(f"{path}: {loc}: {first['msg']}") from None
    d = doc.defaults

    def spec(entry: TopicEntry, name: str | None = None) -> TopicSpec:
        size = d.max_message_bytes if name is not None or entry.max_message_bytes is None else entry.max_message_bytes
        return TopicSpec(
            name=name or entry.name, partitions=entry.partitions or d.partitions,
            replication_factor=entry.replication_factor or d.replication_factor,
            min_insync_replicas=entry.min_insync_replicas or d.min_insync_replicas,
            retention_ms=d.retention_ms if entry.retention_ms is None else entry.retention_ms,
            cleanup_policy=entry.cleanup_policy or d.cleanup_policy, max_message_bytes=size)

    out = [spec(t) for t in doc.internal]
    for p in doc.partners:  # a partner feed mirrors its internal topic's partitions; its size limit is the default
        out += [spec(t, partner_topic(p, t.name)) for t in doc.internal]
    inbound = TopicEntry(name="inbound", partitions=doc.inbound.partitions)
    # Inbound and partner-origin topics exist per exchanged type only: a partner never sends us a type each side
    # computes for itself (its deconfliction alerts: schemas.agreement.NOT_EXCHANGED), so there are no inbound,
    # origin, component-origin or third-party topics of those; the partner and component feeds of ours exist.
    exchanged = [t for t in doc.internal if is_exchanged(type_for_topic(t.name))]
    for p in doc.partners:  # what the partner sends (bounded by the broker), what the guard accepted, refused
        for t in exchanged:
            type_name = type_for_topic(t.name)
            out.append(dataclasses.replace(spec(inbound, inbound_topic(p, type_name)),
                                           max_message_bytes=doc.inbound.max_message_bytes))
            out.append(spec(inbound, origin_topic(p, type_name)))
        out.append(spec(inbound, quarantine_topic(p)))
    for c in doc.components:  # a component feed mirrors the partitions of its source topic
        for t in doc.internal:
            type_name = type_for_topic(t.name)
            out.append(spec(t, recipient_topic(c, type_name)))
            if is_exchanged(type_name):
                out += [spec(inbound, recipient_topic(c, origin_source(p, type_name))) for p in doc.partners]
    for tp in doc.third_party:
        out += [spec(inbound, recipient_topic(tp.partner, origin_source(tp.origin, type_for_topic(t.name))))
                for t in exchanged]
    out += [spec(t) for t in doc.topics]
    names = [t.name for t in out]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"{path}: topic declared twice: {', '.join(sorted(dupes))}")
    return out


def fit_to_cluster(spec: TopicSpec, brokers: int) -> TopicSpec:
    """Cap replication to the broker count and min.insync.replicas below it (when replicated)."""
    rf = min(spec.replication_factor, brokers)
    isr = min(spec.min_insync_replicas, max(1, rf - 1))
    if (rf, isr) == (spec.replication_factor, spec.min_insync_replicas):
        return spec
    return TopicSpec(spec.name, spec.partitions, rf, isr, spec.retention_ms, spec.cleanup_policy, spec.max_message_bytes)


def apply_topics(specs: list[TopicSpec], admin=None, timeout: float = 30.0) -> tuple[list[str], list[str], list[str]]:
    """Create missing topics. Returns (created, drift lines, notes). Existing topics are never altered."""
    admin = admin or kafka.admin()
    md = admin.list_topics(timeout=timeout)
    brokers = len(md.brokers)
    fitted = [fit_to_cluster(s, brokers) for s in specs]
    notes = []
    if any(f != s for f, s in zip(fitted, specs)):
        notes.append(f"{brokers} broker(s): replication capped to {min(brokers, 3)}, "
                     f"min.insync.replicas to {max(1, min(brokers, 3) - 1)}")
    missing = [s for s in fitted if s.name not in md.topics]
    created = []
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication_factor, config=s.configs()) for s in missing],
            operation_timeout=timeout, request_timeout=timeout)
        for name, fut in futures.items():
            try:
                fut.result()
                created.append(name)
            except Exception as e:  # noqa: BLE001
                if "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise RuntimeError(f"creating topic {name} failed: {e}") from e
    if created:
        wait_for_leaders(admin, created, timeout)
    drift = []
    existing = [s for s in fitted if s.name in md.topics]
    if existing:
        resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in existing]
        configs = {r.name: f.result() for r, f in admin.describe_configs(resources, request_timeout=timeout).items()}
        for s in existing:
            t = md.topics[s.name]
            if len(t.partitions) != s.partitions:
                drift.append(f"{s.name}: partitions {len(t.partitions)} on the broker, {s.partitions} declared")
            rf = len(next(iter(t.partitions.values())).replicas) if t.partitions else 0
            if rf != s.replication_factor:
                drift.append(f"{s.name}: replication {rf} on the broker, {s.replication_factor} declared")
            for key, want in s.configs().items():
                have = configs[s.name][key].value
                if have != want:
                    drift.append(f"{s.name}: {key}={have} on the broker, {want} declared")
    return created, drift, notes


def wait_for_leaders(admin, names: list[str], timeout: float = 30.0) -> None:
    """A created topic is usable once every partition has a leader: wait for that (clients that query
    offsets right after creation otherwise get NOT_LEADER_FOR_PARTITION)."""
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        md = admin.list_topics(timeout=timeout)
        for name in list(pending):
            t = md.topics.get(name)
            if t is not None and t.error is None and t.partitions and all(
                    p.leader >= 0 and p.error is None for p in t.partitions.values()):
                pending.discard(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"topics without a leader after {timeout:.0f}s: {', '.join(sorted(pending))}")
        time.sleep(0.2)


app = typer.Typer(no_args_is_help=True, help="Topics declared in deploy/topics.yaml.")


@app.command("apply")
def apply_cmd(file: Path = typer.Option(None, "--file", "-f", help="topics file (default deploy/topics.yaml)")) -> None:
    """Create missing topics; report drift of existing ones (exit 3 when there is drift)."""
    try:
        specs = load_topics(file)
    except (OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    created, drift, notes = apply_topics(specs)
    for n in notes:
        typer.echo(f"note: {n}")
    for name in created:
        typer.echo(f"created {name}")
    typer.echo(f"{len(created)} created, {len(specs) - len(created)} already present, {len(drift)} drift")
    for d in drift:
        typer.echo(f"drift: {d}")
    if drift:
        raise typer.Exit(3)
