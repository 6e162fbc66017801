"""Soak benchmark: the real forwarder (`liaison forward`, its own process) for a long run at a paced input rate;
its RSS sampled over time, and whether it stays flat after a warm-up.

    .venv/bin/python benchmarks/bench_soak.py [--minutes 30] [--rate 2000] [--warmup-minutes 5] [--sample-seconds 10]
        [--state-dir .state/soak] [--port-base 29292] [--registry-port 28381]

(`make soak` runs it for SOAK_MINUTES, default 30; `make bench` leaves it out.)

The simulator publishes --rate records/s (a thread of this process, paced) for --minutes; the forwarder runs as
`liaison forward` with its own group, started at the current end of the internal topics. Every --sample-seconds
the forwarder's VmRSS (/proc/<pid>/status), how far its group's committed offsets on the internal topics have
advanced (records consumed and committed, plus transaction markers) and its backlog (end offsets - committed
offsets on the internal topics) are sampled. Printed: the samples with a line at the end of the warm-up, then
the RSS at the start, at the end of the warm-up, its maximum and at the end; over the samples from the end of the
warm-up on, min / max, the spread (max - min) / min and the least-squares slope; whether the forwarder kept up
(its backlog after the warm-up stayed below 10 s of input; a forwarder that falls behind holds a prefetch queue,
so its RSS measures that, not a leak); and whether the target (spread within 10 %) is met. The warm-up is the
time the forwarder's bounded caches take to fill (benchmarks/README.md): 5 min, or a third of a run shorter than
15 min. Exits 0 either way (a benchmark, not a test). `--minutes 1` is a smoke check.

Servers: the environment's (LIAISON_BOOTSTRAP_SERVERS + LIAISON_SCHEMA_REGISTRY_URL), else a private local set
in --state-dir (default .state/soak) on ports --port-base (and the next) and --registry-port (and the next two),
by default LIAISON_PORT_BASE / LIAISON_REGISTRY_PORT or 29292 / 28381 (clear of the tests' 29092 / 28081 and the
other benchmarks' 29192 / 28281), stopped afterwards. The forwarder's log goes to <state dir>/forwarder-<tag>.log.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLAT_WITHIN = 0.10
#: the forwarder kept up when its backlog after the warm-up stayed below this many seconds of input
KEPT_UP_SECONDS = 10.0


# ----------------------------------------------------------------------------- servers


@contextmanager
def soak_servers(state_dir: Path, port_base: int, registry_port: int):
    if os.environ.get("LIAISON_BOOTSTRAP_SERVERS") and os.environ.get("LIAISON_SCHEMA_REGISTRY_URL"):
        print("# servers: the environment's")
        yield
        return
    from core import settings as settings_mod
    from deploy.infra import servers

    s = settings_mod.Settings(state_dir=state_dir, port_base=port_base, registry_port=registry_port,
                              registry_storage="mem", bootstrap_servers="", schema_registry_url="")
    print(f"# servers: local, {_shown(state_dir)}, kafka :{port_base}, registry gateway :{s.gateway_port()}")
    data = servers.up(s, "single", "mem", log=lambda m: print(f"# {m}"))
    os.environ.update(servers.client_env(data))
    settings_mod.get_settings.cache_clear()
    try:
        from deploy import governance, topics

        topics.apply_topics(topics.load_topics())
        governance.register_all()
        yield
    finally:
        servers.down(s, log=lambda m: print(f"# {m}"))


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- sampling


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Committed:
    """How far a group's committed offsets on the internal topics have advanced since `start`, and its backlog
    (end offsets - committed offsets, read_committed)."""

    def __init__(self, group: str, topics: list[str], start: dict):
        self.group, self.topics, self.start = group, topics, start

    def __call__(self) -> tuple[int | None, int | None]:
        from confluent_kafka import TopicPartition

        from core import kafka
        from core.readback import end_offsets

        try:
            ends = end_offsets(self.topics)
            c = kafka.consumer(self.group)
            try:
                got = c.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
            finally:
                c.close()
        except Exception:  # noqa: BLE001 - a sample missed, not a failed run
            return None, None
        now = {(tp.topic, tp.partition): max(tp.offset, self.start.get((tp.topic, tp.partition), 0)) for tp in got}
        return (sum(max(0, off - self.start.get(tp, 0)) for tp, off in now.items()),
                sum(max(0, end - now.get(tp, 0)) for tp, end in ends.items()))


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return float("nan")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return float("nan") if den == 0 else sum((x - mx) * (y - my) for x, y in points) / den * 3600


# ----------------------------------------------------------------------------- run


class Pacer(threading.Thread):
    """Publishes the simulator's events at `rate` records/s for `seconds` (sleeping to the schedule)."""

    def __init__(self, rate: float, seconds: float):
        super().__init__(daemon=True)
        self.rate, self.seconds = rate, seconds
        self.sent = 0
        self.elapsed = 0.0  # seconds from the first record to the flush after the last
        self.behind_max = 0.0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        from producers.publisher import Publisher
        from producers.simulate import Simulator

        try:
            sim = Simulator({"naval", "air", "intel"}, seed=31)
            with Publisher() as pub:
                t0 = time.monotonic()
                for offset, m in sim.events(self.rate, self.seconds):
                    if self.stop.is_set():
                        break
                    delay = t0 + offset - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        self.behind_max = max(self.behind_max, -delay)
                    pub.publish(m)
                    self.sent += 1
                pub.flush()
                self.elapsed = time.monotonic() - t0
        except BaseException as e:  # noqa: BLE001 - reported by the driver
            self.error = e


def liaison_command() -> list[str]:
    script = Path(sys.executable).parent / "liaison"
    return [str(script)] if script.exists() else [sys.executable, "-m", "liaison.cli"]


def run(args) -> None:
    import schemas
    from core.readback import end_offsets, seed_group
    from core.topics import topic_for
    from release import SecretStore

    for code in ("RUS", "USA"):
        SecretStore().ensure(code)
    tag = uuid.uuid4().hex[:6]
    group = f"liaison-forwarder-soak-{tag}"
    internal = [topic_for(t) for t in schemas.MESSAGE_TYPES]
    start = end_offsets(internal)
    seed_group(group, start)
    forwarded = Committed(group, internal, start)
    seconds = args.minutes * 60
    cmd = liaison_command() + ["forward", "--instance", f"soak-{tag}", "--group", group,
                               "--duration", str(seconds + 120)]
    log = Path(args.state_dir) / f"forwarder-{tag}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"# forwarder: liaison {' '.join(cmd[-7:])} (log {_shown(log)})")
    with log.open("w") as out:
        fwd = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ, cwd=REPO)
    try:
        time.sleep(5.0)  # group join, transactions initialised
        if fwd.poll() is not None:
            raise SystemExit(f"forwarder exited at start ({fwd.returncode}); see {log}")
        pacer = Pacer(args.rate, seconds)
        pacer.start()
        t0 = time.monotonic()
        #: (t, rss MiB, forwarded, published, backlog)
        samples: list[tuple[float, float, int | None, int, int | None]] = []
        warm = args.warmup_minutes * 60
        print(f"# {args.rate:.0f} records/s for {args.minutes:g} min; RSS every {args.sample_seconds:g} s, "
              f"warm-up {warm:.0f} s")
        print(f"{'t (s)':>7} {'RSS MiB':>8} {'published':>10} {'committed':>10} {'/s':>7} {'backlog':>8}")
        next_at = t0
        prev = None
        marked = False
        while True:
            next_at += args.sample_seconds
            time.sleep(max(0.0, next_at - time.monotonic()))
            t, sent = time.monotonic() - t0, pacer.sent
            rss = rss_mib(fwd.pid)
            if rss is None or fwd.poll() is not None:
                print(f"# forwarder gone at t={t:.0f} s (exit {fwd.poll()}); see {log}")
                break
            (n, backlog), t_n = forwarded(), time.monotonic() - t0  # (two consumers: takes a moment)
            rate = (n - prev[1]) / (t_n - prev[0]) if n is not None and prev and prev[1] is not None else float("nan")
            if t >= warm and not marked:
                print(f"{'-' * 20} warm-up over ({warm:.0f} s): the spread is taken from here on {'-' * 20}")
                marked = True
            samples.append((t, rss, n, sent, backlog))
            prev = (t_n, n)
            print(f"{t:7.0f} {rss:8.1f} {sent:10d} {n if n is not None else '-':>10} {rate:7.0f} "
                  f"{backlog if backlog is not None else '-':>8}", flush=True)
            if not pacer.is_alive() and t >= seconds:
                break
        pacer.stop.set()
        pacer.join(30)
        time.sleep(3.0)  # the last batches
        final, final_backlog = forwarded()
    finally:
        if fwd.poll() is None:
            fwd.send_signal(signal.SIGTERM)
            try:
                fwd.wait(60)
            except subprocess.TimeoutExpired:
                fwd.kill()
                fwd.wait()
    report(args, samples, pacer, final, final_backlog, log)


def report(args, samples, pacer: Pacer, final: int | None, final_backlog: int | None, log: Path) -> None:
    warm = args.warmup_minutes * 60
    after = [(t, rss) for t, rss, _n, _p, _b in samples if t >= warm]
    print()
    if pacer.error is not None:
        print(f"publisher failed: {type(pacer.error).__name__}: {pacer.error}")
    elapsed = pacer.elapsed or (samples[-1][0] if samples else 0.0)
    print(f"published                 : {pacer.sent} records, {pacer.sent / elapsed if elapsed else float('nan'):.0f}"
          f"/s over {elapsed:.0f} s (asked {args.rate:.0f}/s; at most {pacer.behind_max:.2f} s behind the schedule)")
    last_n = next(((t, n) for t, _r, n, _p, _b in reversed(samples) if n is not None), None)
    print(f"committed by the forwarder: {final if final is not None else '?'} input offsets at the end"
          + (f" (on average {last_n[1] / last_n[0]:.0f}/s from the first record to t={last_n[0]:.0f} s)"
             if last_n and last_n[0] else "")
          + f"; backlog then {final_backlog if final_backlog is not None else '?'}")
    backlogs = [b for t, _r, _n, _p, b in samples if t >= warm and b is not None]
    if backlogs:
        bound = KEPT_UP_SECONDS * args.rate
        kept = max(backlogs) <= bound
        print(f"kept up after the warm-up : {'yes' if kept else 'NO'} (backlog max {max(backlogs)}, last "
              f"{backlogs[-1]} offsets; bound {bound:.0f} = {KEPT_UP_SECONDS:.0f} s of input)"
              + ("" if kept else ": its RSS includes the prefetched records it is behind on"))
    if not samples:
        print("RSS                       : no sample")
        return
    t_max, rss_max = max(((t, r) for t, r, *_ in samples), key=lambda x: x[1])
    at_warm = after[0] if after else None
    print(f"RSS                       : start {samples[0][1]:.1f} MiB (t={samples[0][0]:.0f} s), end of the warm-up "
          + (f"{at_warm[1]:.1f} MiB (t={at_warm[0]:.0f} s)" if at_warm else "-")
          + f", max {rss_max:.1f} MiB (t={t_max:.0f} s), end {samples[-1][1]:.1f} MiB (t={samples[-1][0]:.0f} s)")
    if len(after) < 2:
        print(f"{f'after the warm-up ({warm:.0f} s)':<26}: fewer than 2 samples: no verdict")
        return
    rss = [r for _t, r in after]
    lo, hi = min(rss), max(rss)
    spread = (hi - lo) / lo
    print(f"{f'after the warm-up ({warm:.0f} s)':<26}: min {lo:.1f}, max {hi:.1f} MiB over {len(rss)} samples; spread "
          f"(max - min) / min {spread * 100:.1f} %; slope {slope_per_hour(after):+.1f} MiB/h")
    met = spread <= FLAT_WITHIN
    print(f"target                    : RSS flat within {FLAT_WITHIN * 100:.0f} % after the warm-up: "
          f"{'MET' if met else 'NOT MET'} ({spread * 100:.1f} %)")
    print(f"forwarder log             : {_shown(log)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("LIAISON_SOAK_MINUTES", "30")),
                    help="default 30, or LIAISON_SOAK_MINUTES (`SOAK_MINUTES=1 make soak` for a smoke run)")
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--warmup-minutes", type=float, default=None,
                    help="default 5, or a third of --minutes when that is shorter than 15")
    ap.add_argument("--sample-seconds", type=float, default=10.0)
    ap.add_argument("--state-dir", type=lambda p: Path(p).resolve(), default=REPO / ".state" / "soak",
                    help="state directory of the local servers (default .state/soak)")
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("LIAISON_PORT_BASE", "29292")))
    ap.add_argument("--registry-port", type=int, default=int(os.environ.get("LIAISON_REGISTRY_PORT", "28381")))
    args = ap.parse_args()
    if args.warmup_minutes is None:
        args.warmup_minutes = 5.0 if args.minutes >= 15 else args.minutes / 3
    sys.path.insert(0, str(REPO))
    with soak_servers(args.state_dir, args.port_base, args.registry_port):
        run(args)


if __name__ == "__main__":
    main()
