"""Servers for on-demand benchmarks: the environment's (LIAISON_BOOTSTRAP_SERVERS + LIAISON_SCHEMA_REGISTRY_URL)
or a private local set in .state/bench (ports 29192.., registry 28281), stopped afterwards."""

from __future__ import annotations

import contextlib
import os

from core import REPO_ROOT
from core import settings as settings_mod


@contextlib.contextmanager
def bench_servers():
    if os.environ.get("LIAISON_BOOTSTRAP_SERVERS") and os.environ.get("LIAISON_SCHEMA_REGISTRY_URL"):
        yield
        return
    from deploy.infra import servers

    s = settings_mod.Settings(state_dir=REPO_ROOT / ".state" / "bench", port_base=29192, registry_port=28281,
                              registry_storage="mem", bootstrap_servers="", schema_registry_url="")
    data = servers.up(s, "single", "mem", log=lambda m: print(f"# {m}"))
    os.environ["LIAISON_BOOTSTRAP_SERVERS"] = data["bootstrap_servers"]
    os.environ["LIAISON_SCHEMA_REGISTRY_URL"] = data["schema_registry_url"]
    settings_mod.get_settings.cache_clear()
    try:
        from deploy import governance, topics

        topics.apply_topics(topics.load_topics())
        governance.register_all()
        yield
    finally:
        servers.down(s, log=lambda m: print(f"# {m}"))
