"""Client quotas as configuration: deploy/quotas.yaml, validated, applied idempotently, drift reported.

    declared = load_quotas()                      # pure: the file (+ partners of deploy/topics.yaml) -> {user: {key: value}}
    p = plan(declared, on_broker)                 # pure: what to set, what drifted
    p, pruned = apply_quotas(declared, tool)      # describe, then alter what the broker lacks or holds otherwise

The quotas are Kafka user quotas (``--entity-type users``). confluent-kafka has no client-quota admin API, so
:class:`ConfigCommand` runs Kafka's own ``kafka.admin.ConfigCommand`` from the server jars' classpath, as admin,
with a ``--command-config`` properties file written (0600) under the state directory for the length of one call.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.settings import get_settings

#: The user-level quota keys Kafka knows (ConfigCommand --entity-type users), in a stable order.
QUOTA_KEYS = ("producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate")
_PRINCIPAL = r"^[a-z0-9{][a-z0-9._{}-]{0,63}$"
_CODE = re.compile(r"^[A-Z]{3}$")

#: principal -> {quota key: value}
Quotas = dict[str, dict[str, float]]


class QuotaError(ValueError):
    """An invalid quota file, or the quota tool failed: one line naming the file/entry or the command."""


# ----------------------------------------------------------------------------------------- the file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuotaSet(_Strict):
    producer_byte_rate: int | None = Field(None, ge=1024, le=2**40)
    consumer_byte_rate: int | None = Field(None, ge=1024, le=2**40)
    request_percentage: float | None = Field(None, gt=0, le=10_000)
    controller_mutation_rate: float | None = Field(None, gt=0, le=1_000_000)

    def values(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in QUOTA_KEYS if getattr(self, k) is not None}


class PerPartner(_Strict):
    principal: str = Field("partner-{partner}", pattern=_PRINCIPAL)
    defaults: QuotaSet
    #: partner code (upper case, as in deploy/topics.yaml) -> keys that replace the defaults for that partner
    overrides: dict[str, QuotaSet] = {}


class QuotaFile(_Strict):
    per_partner: PerPartner


def _partners_from_topics(topics_file: Path) -> list[str]:
    doc = yaml.safe_load(topics_file.read_text()) or {}
    return [str(p) for p in doc.get("partners") or []]


def load_quotas(path: Path | None = None, partners: list[str] | None = None) -> Quotas:
    """Every user quota the file declares: the defaults for each partner (default: the partners of
    deploy/topics.yaml next to the file), each partner's overrides on top."""
    path = Path(path or get_settings().deploy_dir / "quotas.yaml")
    try:
        doc = QuotaFile.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise QuotaError(f"{path}: {loc}: {first['msg']}") from None
    except yaml.YAMLError as e:
        where = f" (line {e.problem_mark.line + 1})" if getattr(e, "problem_mark", None) else ""
        raise QuotaError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if partners is None:
        partners = _partners_from_topics(path.parent / "topics.yaml")
    pp = doc.per_partner
    if "{partner}" not in pp.principal:
        raise QuotaError(f"{path}: per_partner.principal: {pp.principal!r} must contain {{partner}}")
    if "{" in pp.principal.replace("{partner}", ""):
        raise QuotaError(f"{path}: per_partner.principal: only the {{partner}} placeholder is known")
    for code in pp.overrides:
        if not _CODE.match(code):
            raise QuotaError(f"{path}: per_partner.overrides.{code}: a partner code is three upper-case letters")
        if code not in partners:
            raise QuotaError(f"{path}: per_partner.overrides.{code}: not a partner of deploy/topics.yaml "
                             f"({', '.join(partners) or 'none'})")
    defaults = pp.defaults.values()
    if not defaults:
        raise QuotaError(f"{path}: per_partner.defaults: declare at least one of {', '.join(QUOTA_KEYS)}")
    out: Quotas = {}
    for code in partners:
        values = dict(defaults)
        if code in pp.overrides:
            values.update(pp.overrides[code].values())
        out[pp.principal.replace("{partner}", code.lower())] = values
    return out


# ----------------------------------------------------------------------------------------- plan (pure)


@dataclass(frozen=True, order=True)
class Change:
    """One quota key of one user to set: ``old`` is the broker's value (None: unset)."""

    principal: str
    key: str
    value: float
    old: float | None = None

    def __str__(self) -> str:
        was = "unset" if self.old is None else fmt(self.old)
        return f"User:{self.principal} {self.key}={fmt(self.value)} (was {was})"


@dataclass(frozen=True, order=True)
class Drift:
    """One quota key on the broker the file does not declare."""

    principal: str
    key: str
    value: float

    def __str__(self) -> str:
        return f"User:{self.principal} {self.key}={fmt(self.value)}"


@dataclass
class QuotaPlan:
    set: list[Change] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    present: int = 0

    def alters(self, prune: bool = False) -> dict[str, tuple[dict[str, float], list[str]]]:
        """Per principal: (keys to add or change, keys to delete), as one ConfigCommand --alter each."""
        out: dict[str, tuple[dict[str, float], list[str]]] = {}
        for c in self.set:
            out.setdefault(c.principal, ({}, []))[0][c.key] = c.value
        if prune:
            for d in self.drift:
                out.setdefault(d.principal, ({}, []))[1].append(d.key)
        return dict(sorted(out.items()))


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def plan(declared: Quotas, on_broker: Quotas) -> QuotaPlan:
    """What to set (declared, and missing or different on the broker) and the drift (on the broker, not
    declared: other keys of a declared user, or users the file does not name)."""
    p = QuotaPlan()
    for principal, values in sorted(declared.items()):
        have = on_broker.get(principal, {})
        for key, value in sorted(values.items()):
            if key in have and same(have[key], value):
                p.present += 1
            else:
                p.set.append(Change(principal, key, value, have.get(key)))
    for principal, values in sorted(on_broker.items()):
        for key, value in sorted(values.items()):
            if key not in declared.get(principal, {}):
                p.drift.append(Drift(principal, key, value))
    return p


def fmt(value: float) -> str:
    """A quota value as ConfigCommand takes it: integers without a fraction (1048576, not 1048576.0)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


_DESCRIBED = re.compile(r"^Quota configs for user-principal '([^']+)' are ?(.*)$")
_DEFAULT = re.compile(r"^Quota configs for the default user-principal are ?(.*)$")
#: the default user entity (``--entity-default``) as a principal name in :data:`Quotas`
DEFAULT_USER = "<default>"


def parse_describe(text: str) -> Quotas:
    """The user quotas of ``ConfigCommand --entity-type users --describe`` output (other lines, SCRAM
    credentials among them, ignored). Users with no quota key are left out."""
    out: Quotas = {}
    for line in text.splitlines():
        m = _DESCRIBED.match(line.strip())
        if m:
            principal, rest = m.group(1), m.group(2)
        else:
            m = _DEFAULT.match(line.strip())
            if not m:
                continue
            principal, rest = DEFAULT_USER, m.group(1)
        values = {}
        for item in (x.strip() for x in rest.split(",")):
            if "=" in item:
                key, _, value = item.partition("=")
                try:
                    values[key.strip()] = float(value)
                except ValueError:
                    continue
        if values:
            out.setdefault(principal, {}).update(values)
    return out


# ----------------------------------------------------------------------------------------- the broker's tool


_QUIET_LOG4J = """\
status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %c: %m%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
"""


def _prop(value: str) -> str:
    """A value for a Java properties file (backslash is its escape character)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def java_client_properties(conf: dict[str, str]) -> str:
    """The Java client properties of a librdkafka security configuration (security.protocol, sasl.mechanisms,
    sasl.username/password, ssl.ca.location): what ``--command-config`` takes."""
    lines = [f"security.protocol={conf.get('security.protocol', 'PLAINTEXT')}"]
    mech = conf.get("sasl.mechanisms") or conf.get("sasl.mechanism")
    if mech:
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mech == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        user = conf["sasl.username"].replace("\\", "\\\\").replace('"', '\\"')
        pw = conf["sasl.password"].replace("\\", "\\\\").replace('"', '\\"')
        lines += [f"sasl.mechanism={mech}",
                  _prop(f'sasl.jaas.config={module} required username="{user}" password="{pw}";')]
    if conf.get("ssl.ca.location"):
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={_prop(conf['ssl.ca.location'])}"]
    return "\n".join(lines) + "\n"


@dataclass
class ConfigCommand:
    """Kafka's kafka.admin.ConfigCommand, run with ``java`` from the server jars, as admin.

    ``client_conf`` is the admin client's librdkafka security settings (empty for PLAINTEXT); ``work_dir`` gets
    the command-config file (0600, removed after each call) and a quiet log4j2 configuration."""

    java: str
    classpath: str
    bootstrap: str
    client_conf: dict[str, str]
    work_dir: Path
    timeout: float = 120.0

    def _run(self, args: list[str]) -> str:
        from deploy.infra.security import write_private

        self.work_dir.mkdir(parents=True, exist_ok=True)
        log4j = self.work_dir / "tools-log4j2.properties"
        if not log4j.exists() or log4j.read_text() != _QUIET_LOG4J:
            log4j.write_text(_QUIET_LOG4J)
        props = self.work_dir / f"admin-{os.getpid()}.properties"
        write_private(props, java_client_properties(self.client_conf))
        cmd = [self.java, "-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
               f"-Dlog4j2.configurationFile={log4j}", "-cp", self.classpath, "kafka.admin.ConfigCommand",
               "--bootstrap-server", self.bootstrap, "--command-config", str(props), *args]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise QuotaError(f"kafka.admin.ConfigCommand {' '.join(args)} did not finish in {self.timeout:.0f}s "
                             f"(broker {self.bootstrap})") from None
        except OSError as e:
            raise QuotaError(f"cannot run {self.java}: {e}") from None
        finally:
            props.unlink(missing_ok=True)
        if res.returncode != 0:
            err = [ln for ln in (res.stderr + res.stdout).splitlines() if ln.strip() and not ln.startswith("\t")]
            detail = next((ln for ln in err if "Error" in ln or "Exception" in ln), err[-1] if err else "")
            raise QuotaError(f"kafka.admin.ConfigCommand {' '.join(args)} failed (exit {res.returncode}): "
                             f"{detail.strip()[:300]}")
        return res.stdout

    def describe_text(self, principal: str | None = None) -> str:
        who = ["--entity-name", principal] if principal else []
        return self._run(["--entity-type", "users", *who, "--describe"])

    def describe(self) -> Quotas:
        """Every user quota on the broker."""
        return parse_describe(self.describe_text())

    def alter(self, principal: str, add: dict[str, float], delete: list[str] = ()) -> None:
        args = ["--entity-type", "users", "--entity-name", principal, "--alter"]
        if add:
            args += ["--add-config", ",".join(f"{k}={fmt(v)}" for k, v in sorted(add.items()))]
        if delete:
            args += ["--delete-config", ",".join(sorted(delete))]
        self._run(args)


def config_command(bootstrap: str, client_conf: dict[str, str], work_dir: Path, settings=None,
                   jars=None) -> ConfigCommand:
    """A :class:`ConfigCommand` on the server jars (fetched by Maven on first use, see deploy.infra.jars)."""
    if jars is None:
        from deploy.infra.jars import ensure_jars

        jars = ensure_jars(settings or get_settings(), log=lambda *_: None)
    return ConfigCommand(jars.java, jars.kafka_classpath, bootstrap, client_conf, Path(work_dir))


def admin_tool(settings=None) -> ConfigCommand:
    """The tool as admin on the servers the settings point at (LIAISON_BOOTSTRAP_SERVERS or the local ones),
    its command-config under the state directory of those servers."""
    s = settings or get_settings()
    sec = s.security()
    conf = sec.client_config("admin") if sec else {}
    if sec and sec.credentials_dir:
        work_dir = Path(sec.credentials_dir).parent / "tools"  # <state>/<shape>/tools
    else:
        work_dir = Path(s.state_dir) / "tools"
    return config_command(s.kafka_bootstrap(), conf, work_dir, settings=s)


def apply_quotas(declared: Quotas, tool: ConfigCommand, prune: bool = False,
                 dry_run: bool = False) -> tuple[QuotaPlan, list[Drift]]:
    """Set the declared quotas the broker lacks or holds with another value (one --alter per user); with
    ``prune`` delete the drift (the default user entity is reported, never pruned). Returns (plan, pruned)."""
    p = plan(declared, tool.describe())
    if dry_run:
        return p, []
    pruned = [d for d in p.drift if prune and d.principal != DEFAULT_USER]
    alters = QuotaPlan(p.set, pruned).alters(prune=True)
    for principal, (add, delete) in alters.items():
        tool.alter(principal, add, delete)
    return p, pruned


# ----------------------------------------------------------------------------------------- CLI

app = typer.Typer(no_args_is_help=True, help="Client quotas of the partner principals (deploy/quotas.yaml).")


def _load(file: Path | None) -> Quotas:
    try:
        return load_quotas(file)
    except (OSError, QuotaError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)


@app.command("apply")
def apply_cmd(file: Path = typer.Option(None, "--file", "-f", help="quota file (default deploy/quotas.yaml)"),
              prune: bool = typer.Option(False, "--prune", help="delete quotas on the broker the file does not declare"),
              dry_run: bool = typer.Option(False, "--dry-run", help="print what would change, change nothing")) -> None:
    """Set the declared quotas the broker lacks or holds otherwise; print drift (exit 3 while there is drift
    not pruned)."""
    declared = _load(file)
    try:
        p, pruned = apply_quotas(declared, admin_tool(), prune=prune, dry_run=dry_run)
    except QuotaError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1)
    verb = "would set" if dry_run else "set"
    for c in p.set:
        typer.echo(f"{verb} {c}")
    for d in p.drift:
        if d in pruned:
            typer.echo(f"pruned {d}")
        elif dry_run and prune and d.principal != DEFAULT_USER:
            typer.echo(f"would prune {d}")
        else:
            typer.echo(f"drift: {d} (on the broker, not in the file; --prune removes it)")
    if not p.set and not p.drift:
        typer.echo(f"nothing to do: {p.present} quota(s) on the broker, as declared")
    else:
        typer.echo(f"{len(p.set)} {verb}, {p.present} already as declared, {len(p.drift)} drift"
                   + (f" ({len(pruned)} pruned)" if pruned else ""))
    if len(p.drift) > len(pruned):
        raise typer.Exit(3)


@app.command("describe")
def describe_cmd() -> None:
    """Every user quota on the broker, marked when it differs from the file or the file does not declare it."""
    declared = _load(None)
    try:
        on_broker = admin_tool().describe()
    except QuotaError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1)
    for principal in sorted(set(on_broker) | set(declared)):
        have, want = on_broker.get(principal, {}), declared.get(principal, {})
        for key in [k for k in QUOTA_KEYS if k in have or k in want] + sorted(set(have) - set(QUOTA_KEYS)):
            if key not in have:
                note = f"   [declared {fmt(want[key])}, not on the broker]"
            elif key not in want:
                note = "   [not declared]"
            elif not same(have[key], want[key]):
                note = f"   [declared {fmt(want[key])}]"
            else:
                note = ""
            typer.echo(f"User:{principal} {key}={fmt(have[key]) if key in have else '-'}{note}")
