import subprocess
import sys

from deploy.infra import servers


def test_stray_detection_never_matches_a_sibling_state_dir(tmp_path):
    state = tmp_path / "state"
    nested = tmp_path / "state" / "test"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                             f"-Dliaison.server=kafka-1@{nested}"])
    try:
        import time

        deadline = time.time() + 5
        while proc.pid not in servers.stray_pids(nested) and time.time() < deadline:
            time.sleep(0.05)
        assert proc.pid in servers.stray_pids(nested)
        assert proc.pid not in servers.stray_pids(state)
        assert servers.is_ours(proc.pid, nested, "kafka-1")
        assert not servers.is_ours(proc.pid, state, "kafka-1")
        assert not servers.is_ours(proc.pid, nested, "kafka-")
    finally:
        proc.kill()
        proc.wait()
