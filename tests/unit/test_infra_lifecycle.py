"""The pure parts of `liaison infra up/restart/down`: what to start, the bounded stop, the registry's readiness."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.settings import Settings
from deploy.infra import registry, servers
from deploy.infra.process import pid_alive, stop_procs

SINGLE = ["kafka-1", "registry", "registry-gateway"]
CLUSTER = ["kafka-1", "kafka-2", "kafka-3", "registry", "registry-gateway"]


def test_everything_running_starts_nothing():
    d = servers.decide(CLUSTER, set(CLUSTER), token_key_exists=True)
    assert d.start == [] and d.kept == CLUSTER and not d.notes


def test_dead_registry_starts_the_registry_only_and_keeps_the_gateways_key():
    d = servers.decide(SINGLE, {"kafka-1", "registry-gateway"}, token_key_exists=True)
    assert d.start == ["registry"] and d.kept == ["kafka-1", "registry-gateway"]
    assert not d.fresh_token_key  # the running gateway signs with the key on disk


def test_dead_brokers_start_exactly_those():
    d = servers.decide(CLUSTER, {"kafka-2", "registry", "registry-gateway"}, token_key_exists=True)
    assert d.start == ["kafka-1", "kafka-3"] and d.kept == ["kafka-2", "registry", "registry-gateway"]


def test_nothing_running_starts_everything_with_a_fresh_key():
    d = servers.decide(SINGLE, set(), token_key_exists=True)
    assert d.start == SINGLE and d.fresh_token_key


def test_a_lost_token_key_restarts_its_running_holder_too():
    d = servers.decide(SINGLE, {"kafka-1", "registry"}, token_key_exists=False)
    assert d.start == ["registry", "registry-gateway"] and d.fresh_token_key
    assert any("registry restarts too" in n for n in d.notes)


def test_restart_starts_only_the_named_server_and_says_what_else_is_down():
    d = servers.decide(CLUSTER, {"kafka-1", "kafka-3", "registry-gateway"}, token_key_exists=True,
                       only={"registry"})
    assert d.start == ["registry"] and "kafka-2" not in d.kept
    assert any("kafka-2" in n for n in d.notes)


def test_plan_ports_of_some_servers():
    s = Settings(state_dir=Path("/tmp/x"), port_base=41000, registry_port=42000)
    plan = servers.make_plan(s, "cluster", "mem")
    assert plan.names == CLUSTER
    assert [p for p, _ in plan.ports(["kafka-2"])] == [41002, 41003]
    assert [p for p, _ in plan.ports(["registry", "registry-gateway"])] == [42000, 42001, 42002]
    assert len(plan.ports()) == 9


def _spawn(ignore_term: bool) -> subprocess.Popen:
    code = ("import signal, sys, time\n"
            + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
            + "print('up', flush=True)\ntime.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert p.stdout.readline() == b"up\n"  # the handler is set before we signal
    return p


def test_stop_is_bounded_sigterm_then_sigkill_in_parallel():
    polite, stubborn = _spawn(False), _spawn(True)
    try:
        t0 = time.monotonic()
        killed = stop_procs({polite.pid: 5.0, stubborn.pid: 1.0})
        took = time.monotonic() - t0
        assert list(killed) == [stubborn.pid] and 1.0 <= killed[stubborn.pid] < 2.0
        assert took < 3.0  # the polite one did not wait for its own bound
        assert not pid_alive(polite.pid) and not pid_alive(stubborn.pid)
    finally:
        for p in (polite, stubborn):
            p.kill()
            p.wait()


def _health_body(storage: str) -> bytes:
    return json.dumps({"status": "DOWN", "checks": [
        {"name": "ResponseTimeoutReadinessCheck", "status": "DOWN"},
        {"name": registry.STORAGE_CHECK, "status": storage}]}).encode()


@pytest.mark.parametrize("storage,ready", [("UP", True), ("DOWN", False)])
def test_storage_readiness_reads_the_storage_check_only(monkeypatch, storage, ready):
    monkeypatch.setattr(registry, "http_get", lambda url, *a, **k: (503, _health_body(storage)))
    ok, why = registry.storage_ready("https://127.0.0.1:1", None)
    assert ok is ready and (ready or "journal" in why)


def test_readiness_probes_every_subjects_latest_id(monkeypatch, tmp_path):
    from contextlib import contextmanager

    from deploy.infra.gateway import token

    key = tmp_path / "key.pem"
    key.write_bytes(token.generate_key())
    missing = {"7"}
    monkeypatch.setattr(registry, "http_get", lambda url, *a, **k: (200, _health_body("UP")))

    def get(path):
        if path == "/subjects":
            return 200, b'["a-value", "b/c-value"]'
        if "/versions/latest" in path:
            return 200, json.dumps({"id": 7 if "b%2Fc" in path else 3}).encode()
        sid = path.rsplit("/", 1)[1]
        return (404 if sid in missing else 200), b"{}"

    @contextmanager
    def session(api_url, ca, headers, timeout):
        assert headers["Authorization"].startswith("Bearer ")
        yield get

    monkeypatch.setattr(registry, "_api_session", session)
    ok, why = registry.apicurio_ready("https://r/apis/ccompat/v7", "https://m", "", key)
    assert not ok and "/schemas/ids/7" in why and "b/c-value" in why
    missing.clear()
    assert registry.apicurio_ready("https://r/apis/ccompat/v7", "https://m", "", key) == (
        True, "2 subject(s) answer by id")
