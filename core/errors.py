"""Turn connection failures into one actionable line."""

from __future__ import annotations

from core.settings import get_settings


def describe_connection_error(e: BaseException) -> str | None:
    name = type(e).__name__
    module = type(e).__module__
    if module.startswith(("httpx", "httpcore")) and ("Connect" in name or "Timeout" in name):
        return (f"cannot reach the schema registry at {get_settings().registry_url()} ({e}); "
                f"start it with `liaison infra up` or set LIAISON_SCHEMA_REGISTRY_URL")
    if name == "CredentialsError":
        return str(e)
    if name in ("KafkaException", "KafkaError") or module.startswith("confluent_kafka"):
        err = e.args[0] if e.args else None
        code = getattr(err, "name", lambda: "")() if err is not None and hasattr(err, "name") else ""
        principal = get_settings().principal
        if code.endswith("AUTHORIZATION_FAILED"):
            return (f"not authorized: principal {principal} was refused by the broker ({code}: {err.str()}); "
                    f"run as a principal the ACLs in deploy/acls.yaml allow (LIAISON_PRINCIPAL)")
        if code in ("_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "_SSL"):
            return (f"authentication failed for principal {principal} ({code}: {err.str()}); check the "
                    f"credentials in LIAISON_CREDENTIALS_DIR (written by `liaison infra up`)")
        if code in ("_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_MSG_TIMED_OUT"):
            return (f"cannot reach Kafka at {get_settings().kafka_bootstrap()} ({err.str()}); "
                    f"start it with `liaison infra up` or set LIAISON_BOOTSTRAP_SERVERS")
    return None
