"""`liaison subscribe`: a liaison officer's live feed of one partner's filtered topics.

Connects as the partner's principal (``partner-<code>``, credentials written by `liaison infra up`, or a file
given with --credentials), reads every ``liaison.partner.<code>.*`` topic with read_committed in the group
``liaison.partner.<code>.officer.<login>`` (inside the prefix the partner's ACLs allow), decodes each record
through the schema registry (Confluent AvroDeserializer; the registry itself is not authenticated) and prints
one readable line per record, or JSON lines. Ctrl-C (or SIGTERM) stops cleanly and commits.

An authorization failure (a partner's officer asking for another partner's feed, e.g. ``--partner USA --as
RUS``) is one line naming the topic and the principal, exit 3; a failed login (wrong password) exit 4.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import re
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import typer
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from core import kafka, topics
from core.settings import CredentialsError, get_settings, read_credentials

EXIT_DENIED = 3
EXIT_AUTHENTICATION = 4
_DENIED = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
           KafkaError.CLUSTER_AUTHORIZATION_FAILED}


class FeedError(Exception):
    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def parse_since(text: str) -> dt.timedelta:
    """'90s', '10m', '2h', '1d' (or a combination such as '1h30m') -> timedelta."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text.strip().lower())
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", text.strip().lower()):
        raise typer.BadParameter(f"{text!r}: use a duration such as 30s, 10m, 2h, 1d")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return dt.timedelta(seconds=sum(float(n) * unit[u] for n, u in parts))


def partner_topics(partner: str) -> list[str]:
    return sorted(topics.partner_topic(partner, t) for t in topics.INTERNAL_TOPICS)


def component_topics(component: str) -> list[str]:
    """Every feed topic of a component (its own records' and the partners'), as a librdkafka pattern: the
    partners it gets records of are configuration (deploy/topics.yaml), not known here."""
    return ["^" + re.escape(topics.recipient_prefix(component)) + ".*"]


# ----------------------------------------------------------------------------------------- rendering


def field_at(d, path: str):
    """The value at a dotted ``path`` of a decoded record (None where a part is missing or not a mapping)."""
    for part in path.split("."):
        if not isinstance(d, Mapping) or part not in d:
            return None
        d = d[part]
    return d


def _t(v) -> str | None:
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    if isinstance(v, (int, float)):
        return dt.datetime.fromtimestamp(v / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    return None if v is None else str(v)


def _pos(p) -> str | None:
    if not isinstance(p, dict) or p.get("lat") is None:
        return None
    return f"{p['lat']:.4f},{p['lon']:.4f}"


def key_fields(type_name: str, v: dict) -> list[tuple[str, object]]:
    """The key fields of each type, in reading order (absent fields - withheld by the policy - are skipped)."""
    if type_name == "AirTrack":
        return [("callsign", v.get("callsign")), ("time", _t(v.get("time"))), ("pos", _pos(v.get("position"))),
                ("alt", f"{v['altitude_ft']}ft" if v.get("altitude_ft") is not None else None),
                ("hdg", f"{v['heading_deg']:.0f}" if v.get("heading_deg") is not None else None),
                ("spd", f"{v['speed_kt']:.0f}kt" if v.get("speed_kt") is not None else None)]
    if type_name == "AirMissionPlan":
        windows = v.get("time_windows") or []
        band = [f"{w['altitude_band']['floor_ft']}-{w['altitude_band']['ceiling_ft']}ft"
                for w in v.get("route") or [] if isinstance(w.get("altitude_band"), dict)]
        return [("callsign", v.get("callsign")),
                ("aircraft", f"{v.get('aircraft_count')}x {v.get('aircraft_type')}" if v.get("aircraft_type") else None),
                ("status", v.get("status")),
                ("window", f"{_t(windows[0]['start'])}..{_t(windows[0]['end'])}" if windows else None),
                ("route", "/".join(w.get("name", "?") for w in v.get("route") or []) or None),
                ("bands", ",".join(dict.fromkeys(band)) or None), ("purpose", v.get("mission_purpose"))]
    if type_name == "MaritimeTrack":
        return [("ship", v.get("ship_name")), ("class", v.get("ship_class")), ("time", _t(v.get("time"))),
                ("pos", _pos(v.get("position"))),
                ("course", f"{v['course_deg']:.0f}" if v.get("course_deg") is not None else None),
                ("spd", f"{v['speed_kt']:.1f}kt" if v.get("speed_kt") is not None else None),
                ("mission", v.get("mission"))]
    if type_name == "StrikeReport":
        return [("time", _t(v.get("time"))), ("pos", _pos(v.get("position"))), ("target", v.get("target_category")),
                ("group", v.get("group_id")), ("effect", v.get("assessed_effect")),
                ("collateral", v.get("collateral_assessment"))]
    if type_name == "GroupLocationReport":
        return [("group", v.get("group_id")), ("time", _t(v.get("time"))), ("pos", _pos(v.get("position"))),
                ("radius", f"{v['radius_m']:.0f}m" if v.get("radius_m") is not None else None),
                ("confidence", v.get("confidence")), ("activity", v.get("observed_activity"))]
    if type_name == "ForeignFighterReport":
        subject = v.get("subject") or {}
        return [("subject", subject.get("subject_ref")), ("nationality", ",".join(subject.get("nationality") or []) or None),
                ("affiliation", v.get("affiliation")), ("area", field_at(v, "last_known_area.name")),
                ("time", _t(v.get("time")))]
    if type_name == "LogisticsObservation":
        counts = ", ".join(f"{c['kind']}={c['count']}" for c in v.get("counts") or [])
        return [("area", field_at(v, "area.name")), ("from", _t(v.get("time_bucket_start"))),
                ("to", _t(v.get("time_bucket_end"))), ("trend", v.get("trend")), ("counts", counts or None)]
    return [(k, val) for k, val in v.items() if k != "label" and not isinstance(val, (dict, list))][:6]


def _type_of(msg) -> str:
    for k, val in msg.headers() or []:
        if k == "type" and val:
            return val.decode(errors="replace")
    try:
        return topics.base_type(topics.source_of_recipient_topic(msg.topic())[1])
    except Exception:  # noqa: BLE001
        return "?"


def render_line(msg, type_name: str, value: dict) -> str:
    ts = dt.datetime.fromtimestamp(msg.timestamp()[1] / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    label = value.get("label") or {}
    cls = label.get("classification")
    parts = [f"{k}={val}" for k, val in key_fields(type_name, value) if val not in (None, "")]
    return f"{ts}  {type_name:<21} {('[' + cls + ']') if cls else '':<15} " + "  ".join(parts)


def render_json(msg, type_name: str, value: dict | None, error: str | None = None) -> str:
    headers = dict(msg.headers() or [])
    mid = headers.get("message_id")
    out = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
           "timestamp": dt.datetime.fromtimestamp(msg.timestamp()[1] / 1000, dt.timezone.utc).isoformat(),
           "type": type_name, "key": (msg.key() or b"").decode(errors="replace") or None,
           "message_id": mid.decode(errors="replace") if mid else None}
    if error is not None:
        out["error"] = error
    else:
        out["value"] = value
    return json.dumps(out, default=lambda o: o.isoformat() if isinstance(o, dt.datetime) else str(o))


# ----------------------------------------------------------------------------------------- the feed


def _client_config(partner_as: str, credentials: Path | None) -> tuple[dict, str]:
    """``partner_as``: the principal to authenticate as (partner-rus, component-naval)."""
    """Connection settings for the officer, and the principal's name for messages."""
    settings = get_settings()
    if credentials is None:
        principal = partner_as
        try:
            conf = kafka.client_config(principal=principal)
        except CredentialsError as e:
            raise FeedError(str(e)) from None
        if "sasl.username" not in conf:
            print("warning: the servers are not secured (PLAINTEXT): reading without authentication",
                  file=sys.stderr)
        return conf, conf.get("sasl.username", principal)
    try:
        data = json.loads(Path(credentials).read_text())
        user, password = read_credentials(credentials)
    except CredentialsError as e:
        raise FeedError(str(e)) from None
    except (OSError, ValueError) as e:
        raise FeedError(f"cannot read credentials file {credentials}: {e}") from None
    sec = settings.security()
    bootstrap = settings.bootstrap_servers or data.get("bootstrap_servers") or settings.kafka_bootstrap()
    ca = data.get("ssl_ca_location") or (sec.ca_location if sec else None)
    conf = {"bootstrap.servers": bootstrap, "logger": kafka._RDKAFKA_LOGGER,
            "security.protocol": data.get("security_protocol") or (sec.protocol if sec else "SASL_SSL"),
            "sasl.mechanisms": data.get("mechanism") or (sec.mechanism if sec else "SCRAM-SHA-512"),
            "sasl.username": user, "sasl.password": password}
    if ca:
        conf["ssl.ca.location"] = ca
    return conf, user


def _denied(principal: str, topic: str | None, err: KafkaError, group: str) -> FeedError:
    what = {KafkaError.GROUP_AUTHORIZATION_FAILED: f"use consumer group {group}",
            KafkaError.CLUSTER_AUTHORIZATION_FAILED: "access the cluster"}.get(err.code(), f"read topic {topic}")
    return FeedError(f"not authorized: principal {principal} may not {what} ({err.name()})", EXIT_DENIED)


class Feed:
    def __init__(self, partner: str, partner_as: str | None = None, credentials: Path | None = None,
                 topic_list: list[str] | None = None, group: str | None = None, from_beginning: bool = False,
                 since: dt.timedelta | None = None, as_json: bool = False, out=None, component: bool = False):
        """``partner``: a partner code, or with ``component`` one of our components (naval, air, intel): the
        same feed of its own topics (liaison.component.<name>.*), read as its principal component-<name>."""
        self.partner = partner.lower() if component else partner.upper()
        self.topics = topic_list or (component_topics(self.partner) if component else partner_topics(self.partner))
        if not self.topics:
            raise FeedError(f"no topics for partner {self.partner} in deploy/topics.yaml")
        who = "officer" if not component else "reader"
        self.group = group or f"{topics.recipient_prefix(self.partner)}{who}.{_login()}"
        as_code = (partner_as or partner)
        principal = kafka.component_principal(as_code) if component else kafka.partner_principal(as_code)
        conf, self.principal = _client_config(principal, credentials)
        self._auth_error: KafkaError | None = None
        self.conf = {**conf, **kafka.CONSUMER_DEFAULTS, "group.id": self.group, "isolation.level": "read_committed",
                     "auto.offset.reset": "latest", "enable.auto.commit": False, "enable.partition.eof": False,
                     # the feed reports errors itself (error_cb), one line each, not librdkafka's log lines
                     "error_cb": self._on_error, "log_level": 0}
        self.from_beginning = from_beginning
        self.since = since
        self.as_json = as_json
        self.out = out or sys.stdout
        self.count = 0
        self._stop = False
        self._positioned: set[tuple[str, int]] = set()
        self._warned: set[int] = set()
        self._running = False

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
            self._auth_error = err
        elif self._running and err.code() not in self._warned:
            self._warned.add(err.code())
            print(f"warning: {err.str()}", file=sys.stderr)

    def _check_auth(self) -> None:
        if self._auth_error is not None:
            raise FeedError(f"authentication failed for {self.principal}: {self._auth_error.str()}",
                            EXIT_AUTHENTICATION)

    def connect(self, consumer: Consumer, timeout: float = 15.0) -> None:
        """Log in (a refused login is reported within a second or two, not after the full timeout)."""
        try:
            kafka.log_in(consumer, timeout, self._check_auth)
        except KafkaException as e:
            raise FeedError(f"cannot reach Kafka at {self.conf['bootstrap.servers']} as {self.principal}: "
                            f"{e.args[0].str()}") from None

    def preflight(self, consumer: Consumer) -> None:
        """Describe each topic as the officer: one clear line for the first one it may not read."""
        self.connect(consumer)
        patterns = [t for t in self.topics if t.startswith("^")]
        if patterns:  # a component's feed: the topics of its prefix the principal can see (DESCRIBE)
            try:
                visible = consumer.list_topics(timeout=15).topics
            except KafkaException as e:
                self._check_auth()
                raise FeedError(f"cannot reach Kafka at {self.conf['bootstrap.servers']} as {self.principal}: "
                                f"{e.args[0].str()}") from None
            found = sorted(t for t in visible if any(re.match(p, t) for p in patterns))
            if not found:
                raise FeedError(f"no topic matching {', '.join(patterns)} is visible to {self.principal} (run "
                                f"`liaison topics apply`)")
            self.topics = [t for t in self.topics if not t.startswith("^")] + found
        for t in self.topics:
            try:
                md = consumer.list_topics(t, timeout=15)
            except KafkaException as e:
                self._check_auth()
                raise FeedError(f"cannot reach Kafka at {self.conf['bootstrap.servers']} as {self.principal}: "
                                f"{e.args[0].str()}") from None
            tm = md.topics.get(t)
            err = tm.error if tm is not None else None
            if err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise _denied(self.principal, t, err, self.group)
            if err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise FeedError(f"topic {t} does not exist (run `liaison topics apply`)")

    def _on_assign(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        fresh = [p for p in parts if (p.topic, p.partition) not in self._positioned]
        if fresh and self.since is not None:
            at = int((time.time() - self.since.total_seconds()) * 1000)
            by = {(p.topic, p.partition): p.offset for p in kafka.offsets_at(consumer, fresh, at)}
            for p in parts:
                if (p.topic, p.partition) in by:
                    p.offset = by[(p.topic, p.partition)]
        elif fresh and self.from_beginning:
            for p in parts:
                if (p.topic, p.partition) in {(f.topic, f.partition) for f in fresh}:
                    p.offset = OFFSET_BEGINNING
        self._positioned.update((p.topic, p.partition) for p in parts)
        consumer.assign(parts)

    def stop(self, *_args) -> None:
        self._stop = True

    def run(self, max_records: int | None = None, idle_exit: float | None = None) -> int:
        from confluent_kafka.serialization import MessageField, SerializationContext

        from core import serde

        deser = serde.avro_deserializer(principal=self.principal)  # the officer's own registry credentials
        consumer = Consumer(self.conf)
        committed_at = time.monotonic()
        try:
            self.preflight(consumer)
            consumer.subscribe(self.topics, on_assign=self._on_assign)
            self._running = True
            last = time.monotonic()
            while not self._stop:
                msg = consumer.poll(0.5)
                now = time.monotonic()
                self._check_auth()
                if msg is None:
                    if idle_exit is not None and now - last >= idle_exit:
                        break
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() in _DENIED:
                        raise _denied(self.principal, msg.topic(), err, self.group)
                    if err.fatal():
                        raise FeedError(f"consumer failed: {err.str()}")
                    continue
                last = now
                type_name = _type_of(msg)
                try:
                    value = deser(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
                    line = (render_json(msg, type_name, value) if self.as_json
                            else render_line(msg, type_name, value))
                except Exception as e:  # noqa: BLE001 - one bad record must not stop the feed
                    reason = f"{type(e).__name__}: {e}"[:200]
                    line = (render_json(msg, type_name, None, reason) if self.as_json else
                            f"{msg.topic()}[{msg.partition()}]@{msg.offset()}  undecodable record: {reason}")
                print(line, file=self.out, flush=True)
                self.count += 1
                if max_records is not None and self.count >= max_records:
                    break
                if now - committed_at >= 5:
                    self._commit(consumer, asynchronous=True)
                    committed_at = now
        finally:
            self._commit(consumer, asynchronous=False)
            consumer.close()
        return self.count

    def _commit(self, consumer: Consumer, asynchronous: bool) -> None:
        if not self.count:
            return
        try:
            consumer.commit(asynchronous=asynchronous)
        except KafkaException as e:
            if e.args[0].code() != KafkaError._NO_OFFSET:
                print(f"warning: commit failed: {e.args[0].str()}", file=sys.stderr)


def _login() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001
        name = "officer"
    return re.sub(r"[^a-zA-Z0-9._-]", "-", name) or "officer"


def subscribe(partner: str = typer.Option(None, "--partner", "-p", help="partner whose feed to read, e.g. RUS"),
              component: str = typer.Option(None, "--component", "-c", help="or one of our components whose feed "
                                                                           "to read: naval, air, intel"),
              as_partner: str = typer.Option(None, "--as", help="authenticate as this partner's officer "
                                                                 "(default: the --partner's own)"),
              credentials: Path = typer.Option(None, "--credentials",
                                               help="credentials file (default: partner-<code>.json that "
                                                    "`liaison infra up` wrote)"),
              topic_list: str = typer.Option(None, "--topics", help="comma-separated topics (default: every "
                                                                    "liaison.partner.<code>.* topic)"),
              from_beginning: bool = typer.Option(False, "--from-beginning", help="start at the oldest record"),
              since: str = typer.Option(None, "--since", help="start at records of the last 30s / 10m / 2h / 1d"),
              as_json: bool = typer.Option(False, "--json", help="one JSON object per record"),
              max_records: int = typer.Option(None, "--max-records", help="stop after N records"),
              idle_exit: float = typer.Option(None, "--idle-exit", help="stop after S seconds without a record"),
              group: str = typer.Option(None, "--group", help="consumer group (default "
                                                              "liaison.partner.<code>.officer.<login>)")) -> None:
    """A liaison officer's live feed of one partner's filtered topics, or one of our components' (Ctrl-C stops and
    commits)."""
    if (partner is None) == (component is None):
        typer.echo("error: give --partner CODE or --component NAME", err=True)
        raise typer.Exit(2)
    if from_beginning and since:
        typer.echo("error: --from-beginning and --since exclude each other", err=True)
        raise typer.Exit(2)
    try:
        feed = Feed(partner or component, as_partner, credentials,
                    [t.strip() for t in topic_list.split(",") if t.strip()] if topic_list else None, group,
                    from_beginning, parse_since(since) if since else None, as_json, component=component is not None)
        signal.signal(signal.SIGINT, feed.stop)
        signal.signal(signal.SIGTERM, feed.stop)
        n = feed.run(max_records, idle_exit)
    except FeedError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(e.code)
    typer.echo(f"{n} record(s) read from {len(feed.topics)} topic(s) as {feed.principal}; offsets committed "
               f"for group {feed.group}", err=True)
