"""Benchmark the queued send API: accepted messages/s (1 and N phones), then delivered msgs/s."""

# Named queued.py, not queue.py: Python puts bench/ first on sys.path when a bench script
# runs, and a bench/queue.py would shadow the standard library's `queue` (imported by redis,
# anyio, ...), breaking run.py, baseline.py and mock_provider.py.

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from profile_summary import summarise_speedscope
from run import (
    BENCH,
    RESULTS,
    SMSGATE,
    VENV_BIN,
    BenchError,
    Child,
    Children,
    WrkResult,
    _fmt_ms,
    _status_name,
    check_services,
    cpu_seconds,
    create_database,
    db_counters,
    free_port,
    gateway_env,
    log_problems,
    machine,
    machine_busy_seconds,
    run_benchmark,
    run_wrk,
    seed,
    service_pids,
    sql,
    wait_ready,
)
from smsgate.db.models import SendStatus

DB_NAME = "smsgate_bench_queue"  # not run.py's database: both may run on one machine
QUEUED_LUA = BENCH / "queued.lua"
MESSAGES_PATH = "/api/v1/messages"
SINGLE_BUSINESS = "B-BENCH"  # seeded by run.seed
BULK_BUSINESS = "B-BULK"  # same template, so the drain can tell the two backlogs apart
WARMUP_SECONDS = 2
POLL_SECONDS = 0.5
# Final states that mean the message was not sent: any of them fails the run.
BAD_STATES = ("FAILED", "UNKNOWN", "CANCELLED", "UNDELIVERED")


# -- accepting -----------------------------------------------------------------------------


@dataclass
class Accept:
    name: str
    phones: int
    wrk: WrkResult
    wall_seconds: float  # wrk's whole -d run (threads that hit their cap idle to its end)
    committed: int  # send records the phase added (2xx answers, plus requests still in
    # flight when a capped wrk thread stopped: the gateway commits those too)
    gateway_cpu_seconds: float  # until 1 s after wrk exited: stragglers included
    db_cpu_seconds: float
    machine_cpu_cores: float  # averaged over wall_seconds
    db_counters: dict[str, int]  # growth of run.DB_COUNTERS over the phase

    def per_request(self, counter: str) -> float:
        requests = self.wrk.requests
        return self.db_counters.get(counter, 0) / requests if requests else 0.0

    @property
    def messages(self) -> int:
        return self.wrk.ok_2xx * self.phones

    @property
    def msgs_per_second(self) -> float:
        """Accepted (2xx) messages per second; req/s x phones when every answer was 2xx."""
        return self.messages / self.wrk.seconds if self.wrk.seconds else 0.0

    def cores(self, cpu_seconds: float) -> float:
        """Average over the time the load ran (first request to last answer)."""
        return cpu_seconds / self.wrk.seconds if self.wrk.seconds else 0.0

    @property
    def cpu_ms_per_message(self) -> float | None:
        return self.gateway_cpu_seconds * 1000 / self.committed if self.committed else None


def record_count() -> int:
    return int(sql([("SELECT COUNT(*) FROM sms_send_log", ())], DB_NAME)[0][0][0])


def accept(
    name: str,
    url: str,
    gateway: Child,
    args: argparse.Namespace,
    env: dict[str, str],
    phones: int,
    business: str,
    seconds: int,
    max_messages: int,
    children: Children,
    profile: Path | None,
) -> Accept:
    per_thread = math.ceil(max_messages / phones / args.threads) if max_messages else 0
    wrk_env = {
        **env,
        "BENCH_PHONES": str(phones),
        "BENCH_BUSINESS": business,
        "BENCH_MAX_REQUESTS": str(per_thread),
    }
    cap = f", at most {per_thread * args.threads * phones:,} messages" if per_thread else ""
    print(f"\n== {name}: {seconds} s, {phones} phone(s) per request{cap}, at {url}")
    profiler = start_profiler(gateway, profile, seconds, children) if profile else None
    db_pids = service_pids()
    records_before = record_count()
    counters_before = db_counters()
    gw_before = cpu_seconds(gateway.pid)
    db_before = sum(cpu_seconds(pid) for pid in db_pids)
    busy_before = machine_busy_seconds()
    started = time.monotonic()
    result = run_wrk(url, args, seconds, wrk_env, QUEUED_LUA, args.wrk_timeout)
    wall = time.monotonic() - started
    machine_cores = (machine_busy_seconds() - busy_before) / wall
    # wrk divides by the whole -d duration even when the threads stopped at their cap;
    # queued.lua reports the time from the first request to the last answer.
    if match := re.search(r"^elapsed ([\d.]+)$", result.output, re.MULTILINE):
        result.seconds = float(match.group(1))
        result.rps = result.requests / result.seconds if result.seconds else 0.0
    time.sleep(1)  # requests wrk abandoned at its cap or deadline still commit: count them
    measured = Accept(
        name=name,
        phones=phones,
        wrk=result,
        wall_seconds=wall,
        committed=record_count() - records_before,
        gateway_cpu_seconds=cpu_seconds(gateway.pid) - gw_before,
        db_cpu_seconds=sum(cpu_seconds(pid) for pid in db_pids) - db_before,
        machine_cpu_cores=machine_cores,
        db_counters={k: v - counters_before.get(k, 0) for k, v in db_counters().items()},
    )
    if profiler is not None:
        finish_profiler(profiler, children)
    print(
        f"   {result.rps:,.1f} req/s = {measured.msgs_per_second:,.0f} msgs/s, "
        f"p50 {_fmt_ms(result.p50_ms)}, p99 {_fmt_ms(result.p99_ms)}, "
        f"statuses {dict(sorted(result.statuses.items()))}, "
        f"{measured.committed:,} records committed"
    )
    return measured


# -- draining ------------------------------------------------------------------------------


@dataclass
class Drain:
    workers: int
    concurrency: int
    batch_size: int
    finished: bool = False
    seconds_to_first_submitted: float | None = None
    # (seconds since the workers started, {group: {status: count}}) per poll.
    timeline: list[tuple[float, dict[str, dict[str, int]]]] = field(default_factory=list)
    rates: dict[str, dict[str, float]] = field(default_factory=dict)
    worker_cpu_cores: float = 0.0
    db_cpu_cores: float = 0.0
    mock_cpu_cores: float = 0.0
    machine_cpu_cores: float = 0.0
    wall_seconds: float = 0.0
    worker_exit_codes: list[int | None] = field(default_factory=list)


def queue_counts(single_max_id: int) -> dict[str, dict[str, int]]:
    """Records by status, for the 1-phone backlog (ids up to single_max_id) and the bulk one.

    Only status and id are read, so MariaDB answers from the (status, ...) queue index.
    """
    rows = sql(
        [
            (
                "SELECT status, id <= %s, COUNT(*) FROM sms_send_log GROUP BY status, id <= %s",
                (single_max_id, single_max_id),
            )
        ],
        DB_NAME,
    )[0]
    counts: dict[str, dict[str, int]] = {"single": {}, "bulk": {}}
    for status, single, count in rows:
        group = counts["single" if single else "bulk"]
        group[_status_name(status)] = group.get(_status_name(status), 0) + int(count)
    counts["all"] = {}
    for group in ("single", "bulk"):
        for status, count in counts[group].items():
            counts["all"][status] = counts["all"].get(status, 0) + count
    return counts


def _pending(counts: dict[str, int]) -> int:
    return counts.get("QUEUED", 0) + counts.get("SENDING", 0)


def drain_rates(
    timeline: list[tuple[float, dict[str, dict[str, int]]]], group: str
) -> dict[str, float]:
    """Messages/s from the first poll that saw a SUBMITTED record of the group to the first
    poll that saw none pending, counting only what was submitted between those two polls."""
    first = next((p for p in timeline if p[1][group].get("SUBMITTED", 0) > 0), None)
    last = next((p for p in timeline if p[1][group] and not _pending(p[1][group])), None)
    if first is None or last is None or last[0] <= first[0]:
        return {}
    done = last[1][group].get("SUBMITTED", 0) - first[1][group].get("SUBMITTED", 0)
    return {
        "first_submitted_at": first[0],
        "drained_at": last[0],
        "seconds": last[0] - first[0],
        "messages": float(last[1][group].get("SUBMITTED", 0)),
        "msgs_per_second": done / (last[0] - first[0]),
    }


def drain(
    args: argparse.Namespace,
    env: dict[str, str],
    mock: Child,
    single_max_id: int,
    children: Children,
    profiles: dict[str, Path],
) -> Drain:
    result = Drain(args.workers, args.worker_concurrency, args.batch_size)
    worker_env = {**env, "SMSGATE_WORKER_BATCH_SIZE": str(args.batch_size)}
    print(
        f"\n== drain: {args.workers} worker(s), --concurrency {args.worker_concurrency}, "
        f"batch {args.batch_size}, mock {args.latency_ms:g} ms; polling every {POLL_SECONDS} s"
    )
    db_pids = service_pids()
    db_before = sum(cpu_seconds(pid) for pid in db_pids)
    mock_before = cpu_seconds(mock.pid)
    busy_before = machine_busy_seconds()
    started = time.monotonic()
    workers = [
        children.start(
            f"queued-worker-{i + 1}",
            [SMSGATE, "worker", "--no-migrate", "--concurrency", str(args.worker_concurrency)],
            worker_env,
        )
        for i in range(args.workers)
    ]
    worker_cpu: dict[int, float] = {}
    profiler: Child | None = None
    # One py-spy at a time on worker 1: from the first SUBMITTED of each backlog on.
    to_profile = {group: path for group, path in profiles.items() if group in ("single", "bulk")}
    last_print = 0.0
    while True:
        now = time.monotonic() - started
        counts = queue_counts(single_max_id)
        result.timeline.append((round(now, 3), counts))
        for w in workers:  # a worker's CPU time is gone once it exits: keep the last reading
            worker_cpu[w.pid] = cpu_seconds(w.pid) or worker_cpu.get(w.pid, 0.0)
        submitted = counts["all"].get("SUBMITTED", 0)
        if submitted and result.seconds_to_first_submitted is None:
            result.seconds_to_first_submitted = now
        for group in list(to_profile):
            idle = profiler is None or profiler.popen.poll() is not None
            if counts[group].get("SUBMITTED", 0) and _pending(counts[group]) and idle:
                if profiler is not None:
                    finish_profiler(profiler, children)
                seconds = args.profile_seconds
                profiler = start_profiler(workers[0], to_profile.pop(group), seconds, children)
        if now - last_print >= 5:
            last_print = now
            print(f"   {now:5.1f} s: {counts['all']}")
        if not _pending(counts["all"]):
            result.finished = True
            break
        if all(w.popen.poll() is not None for w in workers):
            print("!!! every worker exited before the queue was drained")
            break
        if now > args.drain_timeout:
            print(f"!!! the queue was not drained within {args.drain_timeout} s")
            break
        time.sleep(POLL_SECONDS)
    wall = time.monotonic() - started
    result.wall_seconds = wall
    result.worker_cpu_cores = sum(worker_cpu.values()) / wall
    result.db_cpu_cores = (sum(cpu_seconds(pid) for pid in db_pids) - db_before) / wall
    result.mock_cpu_cores = (cpu_seconds(mock.pid) - mock_before) / wall
    result.machine_cpu_cores = (machine_busy_seconds() - busy_before) / wall
    if profiler is not None:
        finish_profiler(profiler, children)
    result.worker_exit_codes = [w.popen.poll() for w in workers]
    for w in workers:
        children.stop(w)
    result.rates = {g: drain_rates(result.timeline, g) for g in ("single", "bulk", "all")}
    print(f"   drained: {result.finished}, final {result.timeline[-1][1]['all']}")
    return result


# -- profiling -----------------------------------------------------------------------------


def start_profiler(target: Child, output: Path, seconds: float, children: Children) -> Child:
    argv = [
        VENV_BIN / "py-spy",
        "record",
        "--pid",
        str(target.pid),
        "--subprocesses",
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "100",
        "--format",
        "speedscope",
        "--output",
        output,
    ]
    profiler = children.start(f"py-spy-{output.stem}", argv, dict(os.environ))
    time.sleep(0.5)  # let py-spy attach before the load starts
    if profiler.popen.poll() is not None:
        raise BenchError(f"py-spy could not attach to {target.name}:\n{profiler.log_tail()}")
    return profiler


def finish_profiler(profiler: Child, children: Children) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        profiler.popen.wait(timeout=60)
    children.stop(profiler)


# -- report --------------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    accepts: list[Accept],
    queued: dict[str, int],
    result: Drain,
    final: dict[str, dict[str, int]],
    problems: list[tuple[str, str, str, int]],
    logs: dict[str, tuple[int, list[str]]],
) -> bool:
    healthy = True
    print("\n" + "=" * 100)
    print(", ".join(f"{k} {v}" for k, v in machine().items()))
    print(
        f"accept: wrk -t{args.threads} -c{args.connections}, POST {MESSAGES_PATH}, gateway "
        f"`serve --no-migrate --no-worker`; drain: {result.workers} x `smsgate worker "
        f"--concurrency {result.concurrency}`, batch {result.batch_size}, mock "
        f"{args.latency_ms:g} ms"
    )
    header = (
        f"{'phase':<22} {'req/s':>9} {'msgs/s':>9} {'p50':>10} {'p99':>10} {'requests':>9} "
        f"{'messages':>9} {'non-2xx':>8} {'srv CPU':>8} {'CPU/msg':>9} {'DB CPU':>7}"
    )
    print(header)
    print("-" * len(header))
    for a in accepts:
        r = a.wrk
        per_msg = f"{a.cpu_ms_per_message:.3f} ms" if a.cpu_ms_per_message else "?"
        print(
            f"{a.name:<22} {r.rps:>9,.1f} {a.msgs_per_second:>9,.0f} {_fmt_ms(r.p50_ms):>10} "
            f"{_fmt_ms(r.p99_ms):>10} {r.requests:>9,} {a.messages:>9,} {r.non_2xx:>8,} "
            f"{a.cores(a.gateway_cpu_seconds):>7.2f}c {per_msg:>9} "
            f"{a.cores(a.db_cpu_seconds):>6.2f}c"
        )
    labels = {
        "single": "deliver 1-phone queue",
        "bulk": f"deliver {args.phones}-phone queue",
        "all": "deliver, whole drain",
    }
    for group, label in labels.items():
        rate = result.rates.get(group) or {}
        if not rate:
            print(f"{label:<22} {'?':>9} {'?':>9}   (not drained)")
            continue
        note = f"{rate['seconds']:.1f} s from first SUBMITTED to empty queue"
        if group == "all":
            workers_ms = result.worker_cpu_cores * result.wall_seconds * 1000
            per = workers_ms / rate["messages"] if rate["messages"] else 0
            note += (
                f"; workers {result.worker_cpu_cores:.2f}c ({per:.3f} ms/msg), "
                f"DB {result.db_cpu_cores:.2f}c, mock {result.mock_cpu_cores:.2f}c"
            )
        print(
            f"{label:<22} {'':>9} {rate['msgs_per_second']:>9,.0f} {'':>10} {'':>10} {'':>9} "
            f"{int(rate['messages']):>9,}   {note}"
        )
    cores = os.cpu_count() or 1
    for a in accepts:
        ours = (a.gateway_cpu_seconds + a.db_cpu_seconds + a.wrk.wrk_cpu_seconds) / a.wall_seconds
        other = max(0.0, a.machine_cpu_cores - ours)
        print(
            f"{a.name}: load ran {a.wrk.seconds:.1f} s of wrk's {a.wall_seconds:.1f} s; "
            f"machine busy {a.machine_cpu_cores:.2f} of {cores} cores on average (ours "
            f"{ours:.2f}: gateway, MariaDB, wrk; other processes {other:.2f}); "
            f"{a.committed:,} records committed"
        )
        if other > 0.25:
            print(f"!!! {a.name}: other processes used {other:.2f} cores: figures are noisy")
        waits = a.db_counters.get("Innodb_row_lock_waits", 0)
        wait_ms = a.db_counters.get("Innodb_row_lock_time", 0)
        print(
            f"{a.name}: MariaDB per request (whole server): {a.per_request('Questions'):.1f} "
            f"statements ({a.per_request('Com_insert'):.1f} INSERT, "
            f"{a.per_request('Com_update'):.1f} UPDATE, {a.per_request('Com_commit'):.1f} "
            f"COMMIT, {a.per_request('Com_rollback'):.1f} ROLLBACK, "
            f"{a.per_request('Com_admin_commands'):.1f} pings), "
            f"{a.per_request('Innodb_data_fsyncs'):.2f} fsyncs; row-lock waits {waits:,} "
            f"({a.per_request('Innodb_row_lock_waits'):.2f}/request, "
            f"avg {wait_ms / waits if waits else 0:.1f} ms)"
        )
    if result.seconds_to_first_submitted is not None:
        print(
            f"drain: first SUBMITTED {result.seconds_to_first_submitted:.1f} s after the "
            f"workers started; machine busy {result.machine_cpu_cores:.2f} of {cores} cores"
        )

    answered = sum(a.messages for a in accepts)
    print(
        f"\nqueued before the drain: {queued} (2xx answers x phones: {answered:,}; the "
        f"warm-up and requests wrk abandoned at its cap are not included); after: {final['all']}"
    )
    for a in accepts:
        bad = {code: n for code, n in a.wrk.statuses.items() if not 200 <= code < 300}
        if bad or a.wrk.non_2xx:
            healthy = False
            print(f"!!! {a.name}: {a.wrk.non_2xx} non-2xx responses, by status {bad}")
            for code, body in sorted(a.wrk.samples.items()):
                print(f"!!!   first {code} body: {body}")
        errors = {k: v for k, v in a.wrk.socket_errors.items() if v}
        if errors:
            print(f"!!! {a.name}: socket errors {errors}")
            if errors.get("timeout"):
                healthy = False
    if queued.get("QUEUED", 0) < answered:
        healthy = False
        print(f"!!! {answered - queued.get('QUEUED', 0):,} accepted messages are not QUEUED")
    if not result.finished:
        healthy = False
        print(f"!!! the queue was NOT drained: {final['all']}")
    bad_final = {s: n for s, n in final["all"].items() if s in BAD_STATES}
    if bad_final:
        healthy = False
        print(f"!!! {sum(bad_final.values()):,} messages ended badly: {bad_final}")
    for status, code, message, count in problems:
        print(f"!!! {count:,} records {status}: code {code!r}, message {message[:200]!r}")
    if any(code not in (None, 0) for code in result.worker_exit_codes):
        healthy = False
        print(f"!!! worker exit codes during the drain: {result.worker_exit_codes}")
    for name, (count, lines) in logs.items():
        if count:
            print(f"!!! {name} log has {count} warning/error lines:")
            for line in lines:
                print(f"!!!   {line[:300]}")
    print("=" * 100)
    return healthy


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per accept phase")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--phones", type=int, default=100, help="phones per bulk request")
    parser.add_argument(
        "--max-messages",
        type=int,
        default=50_000,
        help="stop the bulk accept phase after about this many messages (0: no cap)",
    )
    parser.add_argument(
        "--wrk-timeout",
        type=int,
        default=10,
        help="seconds before wrk counts a request as timed out (its default, 2 s, is shorter "
        "than a 100-phone request takes at 64 connections)",
    )
    parser.add_argument("--latency-ms", type=float, default=50, help="mock provider delay")
    parser.add_argument("--workers", type=int, default=2, help="worker processes to drain")
    parser.add_argument("--worker-concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=200, help="SMSGATE_WORKER_BATCH_SIZE")
    parser.add_argument("--drain-timeout", type=float, default=240, help="seconds")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the gateway in each accept phase, and worker 1 while it drains each "
        "backlog (bench/results/queued-profile-*.json, summaries *.txt)",
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=6, help="length of each worker profile"
    )
    args = parser.parse_args(argv)
    if args.threads < 1 or args.connections < args.threads:
        parser.error("need --threads >= 1 and --connections >= --threads")
    if not 1 <= args.phones <= 10_000:
        parser.error("--phones must be 1..10000 (the queued API's limit)")
    return args


def preflight(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: apt-get install -y wrk")
    if args.profile and not (VENV_BIN / "py-spy").exists():
        raise BenchError(f"--profile needs py-spy: {VENV_BIN / 'pip'} install py-spy")
    if not SMSGATE.exists():
        raise BenchError(f"{SMSGATE} not found: install the project (pip install -e .) first")
    check_services()


def benchmark(args: argparse.Namespace, children: Children, key_prefix: str) -> bool:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    mock_port = free_port()
    mock = children.start(
        "queued-mock-provider",
        [
            sys.executable,
            BENCH / "mock_provider.py",
            "--port",
            str(mock_port),
            "--latency-ms",
            str(args.latency_ms),
        ],
        dict(os.environ),
    )
    wait_ready(mock, mock_port, "/healthz")
    mock_url = f"http://127.0.0.1:{mock_port}/send"

    print(f"preparing database {DB_NAME} and Redis prefix {key_prefix}")
    create_database(DB_NAME)
    env = gateway_env(key_prefix, DB_NAME)
    app_no, app_key = seed(env, mock_url, DB_NAME)
    sql(
        [
            (
                "INSERT INTO sms_business_config (app_no, business_name, business_no,"
                " template_no, status) VALUES (%s, %s, %s, %s, %s)",
                (app_no, "bench bulk", BULK_BUSINESS, "T-BENCH", 1),
            )
        ],
        DB_NAME,
    )
    wrk_env = {**os.environ, "BENCH_APP_KEY": app_key}

    port = free_port()
    gateway = children.start(
        "queued-gateway",
        [SMSGATE, "serve", "--port", str(port), "--no-migrate", "--no-worker"],
        env,
    )
    wait_ready(gateway, port, "/readyz")
    url = f"http://127.0.0.1:{port}{MESSAGES_PATH}"
    profiles: dict[str, Path] = {}
    if args.profile:
        profiles = {
            "gateway-1": RESULTS / f"queued-profile-gateway-1-{stamp}.json",
            f"gateway-{args.phones}": RESULTS
            / f"queued-profile-gateway-{args.phones}-{stamp}.json",
            "single": RESULTS / f"queued-profile-worker-1-{stamp}.json",
            "bulk": RESULTS / f"queued-profile-worker-{args.phones}-{stamp}.json",
        }

    print(f"\n== warm-up: {WARMUP_SECONDS} s, 1 phone per request")
    run_wrk(
        url,
        args,
        WARMUP_SECONDS,
        {**wrk_env, "BENCH_PHONES": "1", "BENCH_BUSINESS": SINGLE_BUSINESS},
        script=QUEUED_LUA,
    )
    single = accept(
        "accept, 1 phone",
        url,
        gateway,
        args,
        wrk_env,
        1,
        SINGLE_BUSINESS,
        args.duration,
        0,
        children,
        profiles.get("gateway-1"),
    )
    single_max_id = int(
        sql([("SELECT COALESCE(MAX(id), 0) FROM sms_send_log", ())], DB_NAME)[0][0][0]
    )
    bulk = accept(
        f"accept, {args.phones} phones",
        url,
        gateway,
        args,
        wrk_env,
        args.phones,
        BULK_BUSINESS,
        args.duration,
        args.max_messages,
        children,
        profiles.get(f"gateway-{args.phones}"),
    )
    # A graceful stop: what the gateway accepted is committed before the workers start.
    children.stop(gateway)
    queued = queue_counts(single_max_id)["all"]
    print(f"\nqueue before the drain: {queued}")

    result = drain(args, env, mock, single_max_id, children, profiles)
    final = queue_counts(single_max_id)
    problems = [
        (_status_name(r[0]), str(r[1]), str(r[2]), int(r[3]))
        for r in sql(
            [
                (
                    "SELECT status, code, message, COUNT(*) FROM sms_send_log WHERE status <> %s"
                    " GROUP BY status, code, message ORDER BY COUNT(*) DESC LIMIT 10",
                    (int(SendStatus.SUBMITTED),),
                )
            ],
            DB_NAME,
        )[0]
    ]
    log_paths = [gateway.log_path]
    log_paths += [RESULTS / f"queued-worker-{i + 1}.log" for i in range(args.workers)]
    logs = {path.stem: log_problems(path) for path in log_paths if path.exists()}
    healthy = report(args, [single, bulk], queued, result, final, problems, logs)

    summary = {
        "date": stamp,
        "machine": machine(),
        "args": vars(args),
        "accept": [
            {
                **{k: v for k, v in asdict(a).items() if k != "wrk"},
                "wrk": {k: v for k, v in asdict(a.wrk).items() if k != "output"},
                "messages": a.messages,
                "msgs_per_second": a.msgs_per_second,
                "cpu_ms_per_message": a.cpu_ms_per_message,
            }
            for a in (single, bulk)
        ],
        "queued_before_drain": queued,
        "drain": asdict(result),
        "final": final,
        "problems": problems,
        "log_problems": {name: lines for name, (_, lines) in logs.items()},
        "healthy": healthy,
    }
    out = RESULTS / f"queued-{stamp}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"results: {out}")
    for name, path in profiles.items():
        if path.exists():
            text = summarise_speedscope(path)
            path.with_suffix(".txt").write_text(text)
            print(f"\nprofile {name}: {path} (summary {path.with_suffix('.txt')})")
    return healthy


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        parse_args(argv), preflight, benchmark, database=DB_NAME, key_prefix_base="bench-queued"
    )


if __name__ == "__main__":
    sys.exit(main())
