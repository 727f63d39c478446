"""Benchmark the gateway's send API against a bare FastAPI forwarder, both driven by wrk."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.client import HTTPConnection
from pathlib import Path
from typing import IO, Any

import asyncmy
from redis import Redis

from profile_summary import summarise_speedscope
from smsgate.db.models import SendStatus

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
POST_LUA = BENCH / "post.lua"
# Not resolved: .venv/bin/python is a symlink and the venv's scripts live next to it.
VENV_BIN = Path(sys.executable).parent
PYTHON = sys.executable
SMSGATE = VENV_BIN / "smsgate"

MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306
MYSQL_USER = "root"
DB_NAME = "smsgate_bench"
DATABASE_URL = f"mysql+asyncmy://{MYSQL_USER}@{MYSQL_HOST}/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/0"
SEND_PATH = "/api/v1/send-message"
GATEWAY_LOG = RESULTS / "gateway.log"
WARMUP_SECONDS = 2
CLK_TCK = os.sysconf("SC_CLK_TCK")

# asyncmy logs MariaDB's notes (such as "Can't drop database ...; database doesn't exist")
# as warnings; DROP DATABASE IF EXISTS on a fresh machine is expected to produce one.
logging.getLogger("asyncmy").setLevel(logging.ERROR)


class BenchError(Exception):
    """A precondition or step failed; the message says what to do."""


# -- processes -----------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """Every process the benchmark starts, each in its own process group, stopped by id."""

    def __init__(self) -> None:
        self._children: list[Child] = []

    def start(self, name: str, argv: Sequence[str | Path], env: dict[str, str]) -> Child:
        log_path = RESULTS / f"{name}.log"
        log_file = log_path.open("wb")
        popen = subprocess.Popen(
            [str(arg) for arg in argv],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        child = Child(name, popen, log_path, log_file)
        self._children.append(child)
        return child

    def stop(self, child: Child, grace_seconds: float = 35) -> None:
        """SIGINT the child's group (graceful for uvicorn, aiohttp and py-spy), then SIGKILL."""
        if child.popen.poll() is None:
            _signal_group(child.pid, signal.SIGINT)
            try:
                child.popen.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                print(f"  {child.name} did not stop in {grace_seconds:g} s; killing it")
                _signal_group(child.pid, signal.SIGKILL)
                child.popen.wait(timeout=10)
        child.log_file.close()
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self._children)):
            self.stop(child)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_status(port: int, path: str) -> int | None:
    conn = HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def wait_ready(child: Child, port: int, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise BenchError(
                f"{child.name} exited with code {child.popen.returncode} before it was ready; "
                f"its log ({child.log_path}):\n{child.log_tail()}"
            )
        status = http_status(port, path)
        if status == 200:
            return
        time.sleep(0.2)
    raise BenchError(
        f"{child.name} did not answer GET {path} with 200 within {timeout:g} s "
        f"(last status: {status}); its log:\n{child.log_tail()}"
    )


def _stat_cpu(stat_path: Path) -> float:
    try:
        stat = stat_path.read_text()
    except OSError:
        return 0.0
    # Fields after the command name, which may itself contain spaces and parentheses.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads), from /proc (Linux)."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def machine_busy_seconds() -> float:
    """CPU time all processes of the machine spent busy (not idle or waiting on I/O)."""
    # user nice system idle iowait irq softirq steal ...: steal is another VM's, not ours.
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / CLK_TCK


def service_pids(names: Sequence[str] = ("mariadbd", "mysqld")) -> list[int]:
    """Local processes by command name (read only: to account for their CPU time)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in names:
                    pids.append(int(entry.name))
    return pids


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time per thread id of one process."""
    try:
        tids = [int(entry.name) for entry in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return {}
    return {tid: _stat_cpu(Path(f"/proc/{pid}/task/{tid}/stat")) for tid in tids}


# -- MariaDB and Redis ---------------------------------------------------------------------


async def _execute(
    statements: Sequence[tuple[str, Sequence[Any]]], database: str | None = None
) -> list[list[tuple[Any, ...]]]:
    conn = await asyncmy.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        db=database,
        autocommit=True,
        charset="utf8mb4",
    )
    try:
        results = []
        async with conn.cursor() as cursor:
            for sql, params in statements:
                await cursor.execute(sql, params)
                results.append(list(await cursor.fetchall()))
        return results
    finally:
        await conn.ensure_closed()


def sql(
    statements: Sequence[tuple[str, Sequence[Any]]], database: str | None = DB_NAME
) -> list[list[tuple[Any, ...]]]:
    return asyncio.run(_execute(statements, database))


def check_services() -> None:
    try:
        sql([("SELECT VERSION()", ())], database=None)
    except Exception as exc:
        raise BenchError(
            f"MariaDB is not reachable at {MYSQL_USER}@{MYSQL_HOST}:{MYSQL_PORT} "
            f"(user root, empty password): {exc}"
        ) from exc
    try:
        with Redis.from_url(REDIS_URL, socket_connect_timeout=2) as redis:
            redis.ping()
    except Exception as exc:
        raise BenchError(f"Redis is not reachable at {REDIS_URL}: {exc}") from exc


def create_database(name: str = DB_NAME) -> None:
    drop_database(name)
    sql(
        [
            (f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci", ()),
        ],
        database=None,
    )


def drop_database(name: str = DB_NAME) -> None:
    sql([(f"DROP DATABASE IF EXISTS {name}", ())], database=None)


def clean_redis(prefix: str) -> int:
    with Redis.from_url(REDIS_URL, socket_connect_timeout=2) as redis:
        keys = list(redis.scan_iter(match=f"{prefix}*"))
        if keys:
            redis.delete(*keys)
        return len(keys)


# Server-wide MariaDB counters read around a measured run (SHOW GLOBAL STATUS).
DB_COUNTERS = (
    "Questions",
    "Com_select",
    "Com_insert",
    "Com_update",
    "Com_commit",
    "Com_rollback",
    "Com_admin_commands",  # COM_PING from pool_pre_ping lands here
    "Innodb_row_lock_waits",
    "Innodb_row_lock_time",  # milliseconds
    "Innodb_log_writes",
    "Innodb_data_fsyncs",  # includes the redo-log flushes of each COMMIT
)


def db_counters() -> dict[str, int]:
    rows = sql([("SHOW GLOBAL STATUS", ())], database=None)[0]
    wanted = {name.lower(): name for name in DB_COUNTERS}
    return {wanted[str(k).lower()]: int(v) for k, v in rows if str(k).lower() in wanted}


def gateway_env(key_prefix: str, database: str = DB_NAME) -> dict[str, str]:
    return {
        **os.environ,
        "SMSGATE_DATABASE_URL": f"mysql+asyncmy://{MYSQL_USER}@{MYSQL_HOST}/{database}",
        "SMSGATE_REDIS_URL": REDIS_URL,
        "SMSGATE_REDIS_KEY_PREFIX": key_prefix,
        # `serve` wants one; the bench database is fresh and stores no sealed secret.
        "SMSGATE_SECRET_KEY": secrets.token_urlsafe(32),
    }


def run_cli(argv: Sequence[str | Path], env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(arg) for arg in argv], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(str(a) for a in argv)} failed with code {done.returncode}:\n"
            f"{done.stdout}{done.stderr}"
        )
    return done.stdout


def seed(env: dict[str, str], mock_url: str, database: str = DB_NAME) -> tuple[str, str]:
    """Migrate, create the app with the CLI, then insert channel, sign, template, business."""
    run_cli([SMSGATE, "db", "upgrade"], env)
    out = run_cli(
        [SMSGATE, "app", "create", "bench", "--quota", "100000000", "--rate-limit", "0", "--json"],
        env,
    )
    line = next((ln for ln in reversed(out.splitlines()) if ln.startswith("{")), None)
    if line is None:
        raise BenchError(f"`smsgate app create --json` printed no JSON:\n{out}")
    issued = json.loads(line)
    app_no, app_key = issued["appNo"], issued["appKey"]
    sql(
        [
            (
                "INSERT INTO sms_service_provider_config (channel_no, provider_name, provider_no,"
                " access_key_id, access_key_secret, endpoint, ext_json, status)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                ("Loopback", "bench mock", "bench", "", "", mock_url, "{}", 1),
            ),
            (
                "INSERT INTO sms_sign_config (sign_name, provider_no, provider_name, status)"
                " VALUES (%s, %s, %s, %s)",
                ("bench", "bench", "bench mock", 1),
            ),
            (
                "INSERT INTO sms_template_config (sign_name, provider_no, template_no,"
                " template_content, third_party_template_no, status)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                ("bench", "bench", "T-BENCH", "Your code is ${code}", "BENCH", 1),
            ),
            (
                "INSERT INTO sms_business_config (app_no, business_name, business_no,"
                " template_no, status) VALUES (%s, %s, %s, %s, %s)",
                (app_no, "bench", "B-BENCH", "T-BENCH", 1),
            ),
        ],
        database,
    )
    return app_no, app_key


# -- wrk -----------------------------------------------------------------------------------

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass
class WrkResult:
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    samples: dict[int, str] = field(default_factory=dict)
    wrk_cpu_seconds: float = 0.0
    output: str = ""

    @property
    def ok_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)

    @property
    def socket_error_total(self) -> int:
        return sum(self.socket_errors.values())


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    result = WrkResult(output=output)
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result.rps = float(match.group(1))
    if match := re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output):
        result.requests = int(match.group(1))
        result.seconds = _ms(match.group(2), match.group(3)) / 1000
    for pct, attr in (("50", "p50_ms"), ("99", "p99_ms")):
        if match := re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE):
            setattr(result, attr, _ms(match.group(1), match.group(2)))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        names = ("connect", "read", "write", "timeout")
        result.socket_errors = {n: int(v) for n, v in zip(names, match.groups(), strict=True)}
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        result.non_2xx = int(match.group(1))
    result.statuses = {
        int(code): int(count)
        for code, count in re.findall(r"^status (\d+): (\d+)$", output, re.MULTILINE)
    }
    result.samples = {
        int(code): body for code, body in re.findall(r"^sample (\d+): (.*)$", output, re.MULTILINE)
    }
    return result


def run_wrk(
    url: str,
    args: argparse.Namespace,
    seconds: int,
    env: dict[str, str],
    script: Path = POST_LUA,
    timeout_seconds: int | None = None,
) -> WrkResult:
    argv = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        *([f"--timeout={timeout_seconds}s"] if timeout_seconds else []),
        "--latency",
        "-s",
        str(script),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or "Requests/sec" not in done.stdout:
        raise BenchError(f"wrk failed (code {done.returncode}):\n{done.stdout}{done.stderr}")
    result = parse_wrk(done.stdout)
    result.wrk_cpu_seconds = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


@dataclass
class Measurement:
    name: str
    warmup: WrkResult
    main: WrkResult
    server_cpu_cores: float  # CPU seconds of the server process per wall second
    server_main_thread_cores: float  # of which the event-loop thread
    server_threads: int  # threads seen during the run
    mock_cpu_cores: float
    wrk_cpu_cores: float
    db_cpu_cores: float  # the local MariaDB server, shared with everything else
    machine_cpu_cores: float  # everything on the machine: > the sum above means other load
    db_counters: dict[str, int]  # growth of DB_COUNTERS during the measured run

    def per_request(self, counter: str) -> float:
        return self.db_counters.get(counter, 0) / self.main.requests if self.main.requests else 0.0

    @property
    def cpu_ms_per_request(self) -> float | None:
        if not self.main.requests:
            return None
        return self.server_cpu_cores * self.main.seconds * 1000 / self.main.requests


def drive(
    name: str,
    url: str,
    server: Child,
    mock: Child,
    args: argparse.Namespace,
    env: dict[str, str],
    children: Children,
) -> Measurement:
    print(f"\n== {name}: warm-up {WARMUP_SECONDS} s, then {args.duration} s at {url}")
    warmup = run_wrk(url, args, WARMUP_SECONDS, env)
    profiler = start_profiler(server, args, children) if args.profile else None
    server_before, mock_before = cpu_seconds(server.pid), cpu_seconds(mock.pid)
    threads_before = thread_cpu_seconds(server.pid)
    db_pids = service_pids()
    db_before = sum(cpu_seconds(pid) for pid in db_pids)
    counters_before = db_counters()
    busy_before = machine_busy_seconds()
    started = time.monotonic()
    main = run_wrk(url, args, args.duration, env)
    wall = time.monotonic() - started
    server_cpu = (cpu_seconds(server.pid) - server_before) / wall
    threads_after = thread_cpu_seconds(server.pid)
    main_thread = (threads_after.get(server.pid, 0) - threads_before.get(server.pid, 0)) / wall
    mock_cpu = (cpu_seconds(mock.pid) - mock_before) / wall
    db_cpu = (sum(cpu_seconds(pid) for pid in db_pids) - db_before) / wall
    machine_cpu = (machine_busy_seconds() - busy_before) / wall
    counters_after = db_counters()
    counters = {k: counters_after.get(k, 0) - v for k, v in counters_before.items()}
    if profiler is not None:
        finish_profiler(profiler, children)
    measured = Measurement(
        name,
        warmup,
        main,
        server_cpu,
        main_thread,
        len(threads_before.keys() | threads_after.keys()),
        mock_cpu,
        main.wrk_cpu_seconds / wall,
        db_cpu,
        machine_cpu,
        counters,
    )
    print(
        f"   {main.rps:,.0f} req/s, p50 {_fmt_ms(main.p50_ms)}, p99 {_fmt_ms(main.p99_ms)}, "
        f"statuses {dict(sorted(main.statuses.items()))}"
    )
    return measured


# -- profiling -----------------------------------------------------------------------------


def profile_output(fmt: str) -> Path:
    suffix = {"speedscope": "json", "flamegraph": "svg", "raw": "txt"}[fmt]
    return RESULTS / f"profile.{suffix}"


def start_profiler(server: Child, args: argparse.Namespace, children: Children) -> Child:
    """Attach py-spy to the running gateway for exactly the measured run (not start-up)."""
    argv = [
        VENV_BIN / "py-spy",
        "record",
        "--pid",
        str(server.pid),
        "--subprocesses",
        "--duration",
        str(args.duration),
        "--rate",
        str(args.profile_rate),
        "--format",
        args.profile_format,
        "--output",
        profile_output(args.profile_format),
    ]
    profiler = children.start("py-spy", argv, dict(os.environ))
    time.sleep(0.5)  # py-spy needs a moment to attach before the load starts
    if profiler.popen.poll() is not None:
        raise BenchError(f"py-spy could not attach to the gateway:\n{profiler.log_tail()}")
    return profiler


def finish_profiler(profiler: Child, children: Children) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        profiler.popen.wait(timeout=60)
    children.stop(profiler)


# -- checks and report ---------------------------------------------------------------------


@dataclass
class RecordCheck:
    by_status: dict[str, int]
    problems: list[tuple[str, str, str, int]]
    use_number: int | None


def check_records(app_no: str) -> RecordCheck:
    by_status, problems, app = sql(
        [
            ("SELECT status, COUNT(*) FROM sms_send_log GROUP BY status", ()),
            (
                "SELECT status, code, message, COUNT(*) FROM sms_send_log WHERE status <> %s"
                " GROUP BY status, code, message ORDER BY COUNT(*) DESC LIMIT 10",
                (int(SendStatus.SUBMITTED),),
            ),
            ("SELECT use_number FROM sms_app_config WHERE app_no = %s", (app_no,)),
        ]
    )
    return RecordCheck(
        by_status={_status_name(row[0]): int(row[1]) for row in by_status},
        problems=[(_status_name(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in problems],
        use_number=int(app[0][0]) if app else None,
    )


def _status_name(value: int) -> str:
    try:
        return SendStatus(value).name
    except ValueError:
        return str(value)


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def log_problems(child_log: Path, limit: int = 15) -> tuple[int, list[str]]:
    """Warning and error lines of a server log, plus a count of each exception type raised."""
    text = child_log.read_text(encoding="utf-8", errors="replace")
    pattern = re.compile(r"ERROR|CRITICAL|WARNING|unhandled|Traceback")
    lines = [ln for ln in text.splitlines() if not ln.startswith(" ") and pattern.search(ln)]
    exceptions = Counter(
        re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception|Disconnect|Timeout)\w*)\b.*$", text, re.M)
    )
    distinct = [f"{n} x {line}" for line, n in Counter(lines).most_common(limit)]
    distinct += [f"{n} x exception {name}" for name, n in exceptions.most_common(limit)]
    return len(lines), distinct


def machine() -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    revision = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "git": revision or "?",
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def report(
    args: argparse.Namespace,
    baseline: Measurement,
    gateway: Measurement,
    records: RecordCheck,
    gateway_log: tuple[int, list[str]],
) -> bool:
    """Print the comparison; False when the gateway (or the baseline) did not really work."""
    healthy = True
    ceiling = args.connections / (args.latency_ms / 1000) if args.latency_ms else None
    print("\n" + "=" * 100)
    print(", ".join(f"{k} {v}" for k, v in machine().items()))
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, mock provider latency "
        f"{args.latency_ms:g} ms" + (f" (ceiling {ceiling:,.0f} req/s)" if ceiling else "")
    )
    header = (
        f"{'target':<9} {'req/s':>9} {'p50':>10} {'p99':>10} {'requests':>9} {'non-2xx':>8} "
        f"{'sock err':>8} {'srv CPU':>8} {'CPU/req':>9} {'mock CPU':>8} {'wrk CPU':>8} "
        f"{'DB CPU':>7}"
    )
    print(header)
    print("-" * len(header))
    for m in (baseline, gateway):
        r = m.main
        per_req = f"{m.cpu_ms_per_request:.2f} ms" if m.cpu_ms_per_request else "?"
        print(
            f"{m.name:<9} {r.rps:>9,.1f} {_fmt_ms(r.p50_ms):>10} {_fmt_ms(r.p99_ms):>10} "
            f"{r.requests:>9,} {r.non_2xx:>8,} {r.socket_error_total:>8,} "
            f"{m.server_cpu_cores:>7.2f}c {per_req:>9} {m.mock_cpu_cores:>7.2f}c "
            f"{m.wrk_cpu_cores:>7.2f}c {m.db_cpu_cores:>6.2f}c"
        )
    cores = os.cpu_count() or 1
    for m in (baseline, gateway):
        ours = m.server_cpu_cores + m.mock_cpu_cores + m.wrk_cpu_cores + m.db_cpu_cores
        other = max(0.0, m.machine_cpu_cores - ours)
        print(
            f"{m.name}: server process {m.server_cpu_cores:.2f} cores, of which the event-loop "
            f"thread {m.server_main_thread_cores:.2f} ({m.server_threads} threads seen); "
            f"machine busy {m.machine_cpu_cores:.2f} of {cores} cores, "
            f"{other:.2f} by other processes"
        )
        if other > 0.25:
            print(f"!!! {m.name}: other processes used {other:.2f} cores: these figures are noisy")
    g = gateway
    waits = g.db_counters.get("Innodb_row_lock_waits", 0)
    wait_ms = g.db_counters.get("Innodb_row_lock_time", 0)
    print(
        f"gateway MariaDB work per request: {g.per_request('Questions'):.1f} statements "
        f"({g.per_request('Com_insert'):.1f} INSERT, {g.per_request('Com_update'):.1f} UPDATE, "
        f"{g.per_request('Com_select'):.1f} SELECT, {g.per_request('Com_commit'):.1f} COMMIT, "
        f"{g.per_request('Com_rollback'):.1f} ROLLBACK), "
        f"{g.per_request('Com_admin_commands'):.1f} pings, "
        f"{g.per_request('Innodb_log_writes'):.2f} redo-log writes, "
        f"{g.per_request('Innodb_data_fsyncs'):.2f} fsyncs; "
        f"row-lock waits {waits:,} ({g.per_request('Innodb_row_lock_waits'):.2f}/request, "
        f"avg {wait_ms / waits if waits else 0:.1f} ms)"
    )
    ratio = gateway.main.rps / baseline.main.rps if baseline.main.rps else 0.0
    print(f"\nratio gateway/baseline req/s: {ratio:.3f}")

    for m in (baseline, gateway):
        for phase, r in (("warm-up", m.warmup), ("run", m.main)):
            bad = {code: n for code, n in r.statuses.items() if not 200 <= code < 300}
            if bad or r.non_2xx:
                healthy = False
                print(f"\n!!! {m.name} {phase}: {r.non_2xx} non-2xx responses, by status {bad}")
                for code, body in sorted(r.samples.items()):
                    print(f"!!!   first {code} body: {body}")
            errors = {k: v for k, v in r.socket_errors.items() if v}
            if errors:
                print(f"\n!!! {m.name} {phase}: socket errors {errors}")
                if errors.get("timeout"):
                    healthy = False

    submitted = records.by_status.get("SUBMITTED", 0)
    answered_2xx = gateway.warmup.ok_2xx + gateway.main.ok_2xx
    print(
        f"\nsms_send_log: {submitted:,} SUBMITTED rows "
        f"(gateway answered 2xx {answered_2xx:,} times, warm-up included); "
        f"all rows by status: {records.by_status}; app use_number: {records.use_number}"
    )
    if submitted == 0:
        healthy = False
        print("!!! the gateway wrote NO submitted send records: this benchmark measured failures")
    elif submitted < answered_2xx:
        healthy = False
        print(f"!!! {answered_2xx - submitted:,} 2xx answers have no SUBMITTED record")
    for status, code, message, count in records.problems:
        print(f"!!! {count:,} records {status}: code {code!r}, message {message[:200]!r}")
    count, lines = gateway_log
    if count:
        print(f"\n!!! gateway log has {count} warning/error lines ({GATEWAY_LOG}):")
        for line in lines:
            print(f"!!!   {line[:300]}")
    print("=" * 100)
    return healthy


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--latency-ms", type=float, default=50, help="the mock provider's answer delay"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the gateway's measured run with py-spy (bench/results/profile.*)",
    )
    parser.add_argument(
        "--profile-format",
        choices=("speedscope", "flamegraph", "raw"),
        default="speedscope",
        help="py-spy output: speedscope JSON (summarised here), flamegraph SVG, collapsed",
    )
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.connections < args.threads:
        parser.error("need --threads >= 1 and --connections >= --threads")
    return args


def preflight(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise BenchError(
            "wrk is not installed (Debian/Ubuntu package `wrk`). Install it with:\n\n"
            "    apt-get install -y wrk\n\n(run `apt-get update` first on a fresh machine)"
        )
    if args.profile and not (VENV_BIN / "py-spy").exists():
        raise BenchError(
            f"--profile needs py-spy in the virtualenv. Install it with:\n\n"
            f"    {VENV_BIN / 'pip'} install py-spy"
        )
    if not SMSGATE.exists():
        raise BenchError(f"{SMSGATE} not found: install the project (pip install -e .) first")
    check_services()


def benchmark(args: argparse.Namespace, children: Children, key_prefix: str) -> bool:
    mock_port = free_port()
    mock = children.start(
        "mock-provider",
        [
            PYTHON,
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
    create_database()
    env = gateway_env(key_prefix)
    app_no, app_key = seed(env, mock_url)
    wrk_env = {**os.environ, "BENCH_APP_KEY": app_key}

    base_port = free_port()
    base = children.start(
        "baseline",
        [PYTHON, BENCH / "baseline.py", "--port", str(base_port)],
        {**os.environ, "BENCH_MOCK_URL": mock_url},
    )
    wait_ready(base, base_port, "/openapi.json")
    baseline = drive(
        "baseline", f"http://127.0.0.1:{base_port}{SEND_PATH}", base, mock, args, wrk_env, children
    )
    children.stop(base)

    gw_port = free_port()
    gateway = children.start(
        "gateway", [SMSGATE, "serve", "--port", str(gw_port), "--no-migrate"], env
    )
    wait_ready(gateway, gw_port, "/readyz")
    measured = drive(
        "gateway", f"http://127.0.0.1:{gw_port}{SEND_PATH}", gateway, mock, args, wrk_env, children
    )
    # A graceful stop lets requests still in flight when wrk quit finish and write records.
    children.stop(gateway)
    records = check_records(app_no)
    gateway_log = log_problems(gateway.log_path)
    healthy = report(args, baseline, measured, records, gateway_log)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    summary = {
        "date": stamp,
        "machine": machine(),
        "args": vars(args),
        "baseline": _measurement_json(baseline),
        "gateway": _measurement_json(measured),
        "ratio": measured.main.rps / baseline.main.rps if baseline.main.rps else None,
        "records": asdict(records),
        "gateway_log_problems": gateway_log[1],
    }
    out = RESULTS / f"run-{stamp}{'-profile' if args.profile else ''}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"results: {out}")
    if args.profile:
        profile = profile_output(args.profile_format)
        print(f"profile: {profile}")
        if args.profile_format == "speedscope" and profile.exists():
            text = summarise_speedscope(profile)
            (RESULTS / "profile-summary.txt").write_text(text)
            print("\n" + text)
    return healthy


def _measurement_json(m: Measurement) -> dict[str, Any]:
    def run(r: WrkResult) -> dict[str, Any]:
        return {k: v for k, v in asdict(r).items() if k != "output"}

    return {
        "warmup": run(m.warmup),
        "main": run(m.main),
        "server_cpu_cores": m.server_cpu_cores,
        "server_main_thread_cores": m.server_main_thread_cores,
        "server_threads": m.server_threads,
        "cpu_ms_per_request": m.cpu_ms_per_request,
        "mock_cpu_cores": m.mock_cpu_cores,
        "wrk_cpu_cores": m.wrk_cpu_cores,
        "db_cpu_cores": m.db_cpu_cores,
        "machine_cpu_cores": m.machine_cpu_cores,
        "db_counters": m.db_counters,
    }


def run_benchmark(
    args: argparse.Namespace,
    preflight: Callable[[argparse.Namespace], None],
    benchmark: Callable[[argparse.Namespace, Children, str], bool],
    *,
    database: str,
    key_prefix_base: str,
) -> int:
    """Preflight, run, always clean up (processes, database, Redis keys); the exit status."""
    try:
        preflight(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    key_prefix = f"{key_prefix_base}:{secrets.token_hex(6)}:"
    children = Children()
    try:
        healthy = benchmark(args, children, key_prefix)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        children.stop_all()
        try:
            drop_database(database)
            clean_redis(key_prefix)
        except Exception as exc:
            print(f"warning: cleanup failed: {exc}", file=sys.stderr)
    if not healthy:
        print("the benchmark saw failures (see !!! lines above)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        parse_args(argv), preflight, benchmark, database=DB_NAME, key_prefix_base="bench"
    )


if __name__ == "__main__":
    sys.exit(main())
