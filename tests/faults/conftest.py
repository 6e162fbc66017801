"""Fixtures of the fault suite's tests on the real servers (the fuzzing tests need none).

- ``bus``: the topics of deploy/topics.yaml applied and the schemas registered on the session's servers
  (tests/conftest.py's backend), the partners' pseudonymisation keys made.
- ``netcut``: cuts servers' ports off with iptables; every rule carries this session's comment
  ``liaison-fault-<uuid>`` and is removed by the test that made it (try/finally) and again, whatever happened,
  at the end of the session (and at interpreter exit). Each test calls ``netcut.probe()`` first, so that
  iptables missing or not permitted FAILS the test, naming it.
"""

from __future__ import annotations

import atexit
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

SESSION_COMMENT = f"liaison-fault-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def bus(settings):
    from deploy import governance, topics
    from release import SecretStore

    topics.apply_topics(topics.load_topics())
    governance.register_all()
    SecretStore().ensure("RUS"), SecretStore().ensure("USA")
    return settings


@pytest.fixture(scope="session")
def netcut():
    from fault_helpers import NetCut, remove_rules

    atexit.register(remove_rules, SESSION_COMMENT)
    cut = NetCut(SESSION_COMMENT)
    try:
        yield cut
    finally:
        removed = remove_rules(SESSION_COMMENT)
        if removed:
            print(f"\nsession cleanup removed {removed} iptables rule(s) carrying {SESSION_COMMENT}")


# ---------------------------------------------------------------------------------------------- figures
#: (test id, line) of every figure line a fault test printed (lines starting with "[label]"): pytest captures a
#: passing test's output, the issue wants the figures in the run's output, so they are repeated at its end
_FIGURES: list[tuple[str, str]] = []


def pytest_runtest_logreport(report):
    if report.when == "call" and report.location[0].replace("\\", "/").startswith("tests/faults/"):
        for line in (report.capstdout or "").splitlines():
            if line.startswith("["):
                _FIGURES.append((report.nodeid.rpartition("::")[2], line))


def pytest_terminal_summary(terminalreporter):
    if not _FIGURES:
        return
    terminalreporter.section("fault suite figures (printed by each test: records in, released, withheld, "
                             "dead-lettered, duplicates, missing)")
    current = None
    for test, line in _FIGURES:
        if test != current:
            terminalreporter.write_line(test)
            current = test
        terminalreporter.write_line(f"  {line[:2000]}")
