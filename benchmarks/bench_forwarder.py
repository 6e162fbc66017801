"""Forwarder benchmark: the need-to-know forwarder (2 partners, exactly-once) vs raw transactional
pass-through of the same bytes (consume -> produce unchanged, offsets in the transaction), same run.

    .venv/bin/python benchmarks/bench_forwarder.py [--records 100000] [--rate 5000] [--latency-seconds 15]
        [--engine compiled|reference] [--recipients two|all] [--profile FILE]

Prints records/s of each and the ratio (targets, issue 13: >= 40,000 records/s per process, ratio >= 0.4),
the same backlog through two forwarder processes in one group, p50/p99 end-to-end latency at a paced input of
--rate records/s (publish -> visible to a read_committed partner consumer; target p99 <= 250 ms, and the rate the
publisher reached), and the forwarder's peak RSS. Each side runs in its own process (`--role`), started on a
backlog of the same records, so neither pays for the other. `--recipients two` (default, as the issue measures):
the forwarder serves RUS and USA only; `all`: every policy of deploy/policies (the components too).
With --profile FILE, py-spy records the single forwarder's run (a speedscope file; the top functions printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import bench_servers  # noqa: E402

PASSTHROUGH_TOPIC = "bench.passthrough"


def vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ----------------------------------------------------------------------------- roles (child processes)


def role_forward(group: str, idle: float, instance: str, engine: str, policies: str | None) -> dict:
    from consumers.forwarder.service import Forwarder

    fwd = Forwarder(instance=instance, group_id=group, batch_size=2000, engine=engine,
                    policies_dir=Path(policies) if policies else None)
    totals = fwd.run(max_idle=idle, poll_timeout=0.2)
    end = time.perf_counter() - idle  # the idle wait at the end is not work
    t0 = fwd.first_batch_at or end  # from the first batch: group join and start-up are not throughput
    wall = time.time() - (time.perf_counter() - t0)
    return {"records": totals.records, "seconds": end - t0, "rss_mib": vm_hwm_mib(), "start": wall,
            "end": wall + end - t0}


def role_passthrough(group: str, idle: float) -> dict:
    from confluent_kafka import TopicPartition

    import schemas

    from core.topics import topic_for
    from core import kafka

    c = kafka.consumer(group, {"isolation.level": "read_committed"})
    p = kafka.producer({"transactional.id": f"bench-pass-{group}", "linger.ms": 5, "batch.size": 524288,
                        "queue.buffering.max.messages": 1000000})
    p.init_transactions(30)
    c.subscribe([topic_for(t) for t in schemas.MESSAGE_TYPES])
    records, t0, last = 0, None, time.monotonic()
    while True:
        msgs = c.consume(2000, 0.2)
        if not msgs:
            if time.monotonic() - last > idle:
                break
            continue
        last = time.monotonic()
        if t0 is None:
            t0 = time.perf_counter()
        p.begin_transaction()
        offsets = {}
        for m in msgs:
            if m.error():
                continue
            while True:
                try:
                    p.produce(PASSTHROUGH_TOPIC, value=m.value(), key=m.key(), headers=m.headers())
                    break
                except BufferError:
                    p.poll(0.05)
            offsets[(m.topic(), m.partition())] = m.offset() + 1
            records += 1
        p.send_offsets_to_transaction([TopicPartition(t, q, o) for (t, q), o in offsets.items()],
                                      c.consumer_group_metadata(), 30)
        p.commit_transaction(60)
    c.close()
    return {"records": records, "seconds": time.perf_counter() - (t0 or 0) - idle, "rss_mib": vm_hwm_mib()}


def spawn(role: str, group: str, idle: float, instance: str | None = None, engine: str = "compiled",
          policies: str | None = None, profile: str | None = None, idle_samples: bool = False) -> subprocess.Popen:
    args = [sys.executable, __file__, "--role", role, "--group", group, "--idle", str(idle),
            "--instance", instance or group, "--engine", engine] + (["--policies", policies] if policies else [])
    if profile:  # py-spy runs the child and writes its profile (speedscope) when it exits
        args = [str(Path(sys.executable).parent / "py-spy"), "record", "--rate", "200", "--format", "speedscope",
                "-o", profile] + (["--idle"] if idle_samples else []) + ["--"] + args
    return subprocess.Popen(args, stdout=subprocess.PIPE, env=os.environ, text=True)


def result(proc: subprocess.Popen, timeout: float = 900) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed with exit {proc.returncode}")
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])  # py-spy prints too


# ----------------------------------------------------------------------------- driver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", choices=["forward", "passthrough"])
    ap.add_argument("--group")
    ap.add_argument("--idle", type=float, default=3.0)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=5000.0)
    ap.add_argument("--latency-seconds", type=float, default=15.0)
    ap.add_argument("--profile", metavar="FILE", help="py-spy the single forwarder run into FILE (speedscope)")
    ap.add_argument("--engine", choices=["compiled", "reference"], default="compiled")
    ap.add_argument("--recipients", choices=["two", "all"], default="two")
    ap.add_argument("--only", choices=["latency"], help="run only the paced latency part (no backlog runs)")
    ap.add_argument("--profile-latency", metavar="FILE",
                    help="py-spy the latency run's forwarder into FILE, idle (waiting) samples included")
    ap.add_argument("--publisher-linger-ms", type=int, default=5,
                    help="latency: the publisher's linger.ms (default 5, the project's producer default)")
    ap.add_argument("--latency-forwarders", type=int, default=1, help="latency: forwarder processes in the group")
    ap.add_argument("--split", action="store_true",
                    help="latency: also read the internal topics, to split publish -> internal -> partner")
    ap.add_argument("--instance")
    ap.add_argument("--policies")
    args = ap.parse_args()
    if args.role == "forward":
        print(json.dumps(role_forward(args.group, args.idle, args.instance, args.engine, args.policies)))
        return
    if args.role == "passthrough":
        print(json.dumps(role_passthrough(args.group, args.idle)))
        return
    with bench_servers():
        drive(args)


def drive(args) -> None:
    import gc

    from confluent_kafka.admin import NewTopic

    import schemas
    from release import SecretStore
    from core import kafka
    from core.topics import ORIGIN_PREFIX, topic_for
    from core.readback import end_offsets, seed_group
    from producers.publisher import Publisher
    from producers.simulate import Simulator

    internal = [topic_for(t) for t in schemas.MESSAGE_TYPES]
    for code in ("RUS", "USA"):
        SecretStore().ensure(code)
    policies = None
    if args.recipients == "two":  # the setup: two partners (deploy/policies also feeds our components)
        import shutil

        from core import REPO_ROOT

        folder = REPO_ROOT / ".state" / "bench" / "policies-two"  # one folder, made again each run
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for code in ("RUS", "USA"):
            shutil.copy(REPO_ROOT / "deploy" / "policies" / f"{code}.yaml", folder)
        policies = str(folder)
    admin = kafka.admin()
    if PASSTHROUGH_TOPIC not in admin.list_topics(timeout=10).topics:
        admin.create_topics([NewTopic(PASSTHROUGH_TOPIC, 12, 1)])[PASSTHROUGH_TOPIC].result()

    # 1. a backlog of the same records for every side. The forwarder reads the partners' origin topics too: its
    # groups start at their ends (what other benchmarks left there on these servers is not this backlog)
    origin = sorted(t for t in admin.list_topics(timeout=10).topics if t.startswith(ORIGIN_PREFIX))
    start = end_offsets(internal)
    tag = uuid.uuid4().hex[:6]
    g_fwd, g_pass, g_two = f"liaison-forwarder-bench-{tag}", f"bench-pass-{tag}", f"liaison-forwarder-bench2-{tag}"
    seed_group(g_fwd, {**start, **end_offsets(origin)})
    seed_group(g_two, {**start, **end_offsets(origin)})
    seed_group(g_pass, start)
    if args.only == "latency":
        latency(args, tag, internal, origin, policies)
        return
    print(f"# publishing {args.records} simulated records (backlog)")
    sim = Simulator({"naval", "air", "intel"}, seed=21)
    t_pub = time.perf_counter()
    with Publisher() as pub:
        for _, m in sim.events(2000.0, args.records / 2000.0):
            pub.publish(m)
    print(f"#   {args.records / (time.perf_counter() - t_pub):.0f} records/s (simulator + typed producer)")
    gc.collect()

    print(f"# forwarder ({args.engine}, exactly-once, {args.recipients} recipients) on the backlog")
    fwd = result(spawn("forward", g_fwd, args.idle, engine=args.engine, policies=policies, profile=args.profile))
    print("# raw transactional pass-through on the same backlog")
    raw = result(spawn("passthrough", g_pass, args.idle))
    print("# two forwarder processes in one group on the same backlog")
    pair = [spawn("forward", g_two, max(args.idle, 12.0), instance=f"{g_two}-{i}", engine=args.engine,
                  policies=policies)
            for i in "ab"]
    two = [result(p) for p in pair]
    two_rate = sum(r["records"] for r in two) / (max(r["end"] for r in two) - min(r["start"] for r in two))

    # 2. latency at a paced rate
    achieved, lats, sent, lat_proc = latency(args, tag, internal, origin, policies)
    p50 = statistics.median(lats) if lats else float("nan")
    p99 = lats[int(len(lats) * 0.99) - 1] if lats else float("nan")

    f_rate = fwd["records"] / fwd["seconds"]
    r_rate = raw["records"] / raw["seconds"]
    print()
    print(f"backlog records                         : {fwd['records']} (forwarder), {raw['records']} (pass-through)")
    print(f"forwarder, exactly-once, {args.recipients:>3} recipients: {f_rate:10.0f} records/s   (target >= 40000; "
          f"engine {args.engine})")
    print(f"raw transactional pass-through          : {r_rate:10.0f} records/s")
    print(f"ratio forwarder / pass-through          : {f_rate / r_rate:10.2f}   (target >= 0.40)")
    print(f"two forwarder processes, one group      : {two_rate:10.0f} records/s   ({two[0]['records']} + "
          f"{two[1]['records']} records)")
    print(f"latency at {achieved:.0f} records/s, p50 / p99   : {p50:7.1f} ms / {p99:7.1f} ms   (target p99 <= 250 ms;"
          f" {len(lats)} of {len(sent)} released records timed)")
    print(f"forwarder peak RSS                      : {max(fwd['rss_mib'], lat_proc['rss_mib']):10.0f} MiB "
          f"(pass-through {raw['rss_mib']:.0f} MiB)")
    if args.profile:
        print(f"# py-spy profile of the single forwarder run: {args.profile}; self time by function:")
        for share, name in top_frames(args.profile):
            print(f"  {share:5.1f} %  {name}")


def latency(args, tag: str, internal: list[str], origin: list[str], policies: str | None):
    """A forwarder running at the end of its input; --rate records/s for --latency-seconds published, each timed
    from its publish call to its arrival at a read_committed partner consumer."""
    from core import kafka
    from deploy import topics
    from core.topics import PARTNER_PREFIX
    from core.readback import end_offsets, seed_group
    from producers.publisher import Publisher
    from producers.simulate import Simulator

    print(f"# latency: {args.rate:.0f} records/s for {args.latency_seconds:.0f}s through {args.latency_forwarders} "
          f"running forwarder process(es) in one group")
    g_lat = f"liaison-forwarder-bench-lat-{tag}"
    seed_group(g_lat, end_offsets(internal + origin))
    partner_topics = [t.name for t in topics.load_topics() if t.name.startswith(PARTNER_PREFIX)]
    out_start = end_offsets(partner_topics)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()

    def receive(topics_start=None, seen=seen, name="recv"):
        from confluent_kafka import TopicPartition

        c = kafka.consumer(f"bench-{name}-{tag}", {"isolation.level": "read_committed",
                                                      # an empty fetch waits 100 ms; one with data returns at once
                                                      "fetch.wait.max.ms": 100})
        c.assign([TopicPartition(t, p, o) for (t, p), o in (topics_start or out_start).items()])
        while not stop.is_set():
            msgs = c.consume(1, 0.1)  # stamped as they come: consume(n, t) would hold early ones for t
            for m in msgs + (c.consume(1000, 0) if msgs else []):
                if m.error() is None:
                    now = time.time()
                    for k, v in m.headers() or []:
                        if k == "message_id":
                            seen.setdefault(v.decode(), now)
        c.close()

    # the records are simulated before the clock starts: what is timed is publishing, not the simulation
    events = list(Simulator({"naval", "air", "intel"}, seed=22).events(args.rate, args.latency_seconds))
    fprocs = [spawn("forward", g_lat, 5.0, instance=f"{g_lat}-{i}", engine=args.engine, policies=policies,
                    profile=args.profile_latency if i == 0 else None, idle_samples=True)
              for i in range(args.latency_forwarders)]
    time.sleep(4.0)  # let it join the group and initialise its transactions
    recv = threading.Thread(target=receive, daemon=True)
    recv.start()
    seen_in: dict[str, float] = {}  # --split: when each record was readable on its internal topic
    if args.split:
        recv_in = threading.Thread(target=receive, args=(end_offsets(internal), seen_in, "recv-in"), daemon=True)
        recv_in.start()
    pub = Publisher(producer_conf={"linger.ms": args.publisher_linger_ms})
    t0 = time.monotonic()
    for offset, m in events:
        delay = t0 + offset - time.monotonic()
        if delay > 0.002:  # paced in steps of 2 ms: a sleep per record costs more than the publishing
            time.sleep(delay)
        pub.publish(m)
        sent[str(m.label.message_id)] = time.time()
    pub.flush()
    achieved = len(sent) / (time.monotonic() - t0)
    time.sleep(3.0)
    stop.set()
    recv.join()
    lat_proc = max((result(f) for f in fprocs), key=lambda r: r["rss_mib"])
    lats = sorted((seen[k] - sent[k]) * 1000 for k in sent if k in seen)
    if args.split:
        recv_in.join()
        pub_part = sorted((seen_in[k] - sent[k]) * 1000 for k in seen if k in seen_in)
        fwd_part = sorted((seen[k] - seen_in[k]) * 1000 for k in seen if k in seen_in)
        for what, xs in (("publish -> readable on the internal topic", pub_part),
                         ("internal topic -> readable on the partner's", fwd_part)):
            if xs:
                print(f"  {what}: p50 {statistics.median(xs):.1f} ms, p99 {xs[int(len(xs) * 0.99) - 1]:.1f} ms")
    if args.only == "latency":
        p50 = statistics.median(lats) if lats else float("nan")
        p99 = lats[int(len(lats) * 0.99) - 1] if lats else float("nan")
        print(f"latency at {achieved:.0f} records/s, p50 / p99   : {p50:7.1f} ms / {p99:7.1f} ms   (target p99 <= "
              f"250 ms; {len(lats)} of {len(sent)} released records timed)")
        print(f"forwarder peak RSS                      : {lat_proc['rss_mib']:10.0f} MiB")
        if args.profile_latency:
            print(f"# py-spy profile of the latency run's forwarder (idle included): {args.profile_latency}")
            for share, name in top_frames(args.profile_latency):
                print(f"  {share:5.1f} %  {name}")
    return achieved, lats, sent, lat_proc


def top_frames(path: str, n: int = 25) -> list[tuple[float, str]]:
    """The functions with the most self time (samples on top of the stack) in a py-spy speedscope file."""
    from collections import Counter

    doc = json.loads(Path(path).read_text())
    frames = doc["shared"]["frames"]
    own: Counter = Counter()
    total = 0
    for prof in doc["profiles"]:
        for stack, weight in zip(prof["samples"], prof["weights"]):
            if stack:
                f = frames[stack[-1]]
                own[f"{f['name']} ({Path(f.get('file', '?')).name})"] += weight
                total += weight
    return [(100 * w / total, name) for name, w in own.most_common(n)] if total else []


if __name__ == "__main__":
    main()
