"""The benchmark harness behind `make bench` (bench/README.md explains the figures).

It prepares a database of its own (`.data/bench-postgres`: migrate, then
`manage.py generate_synthetic --events N --reuse`) and a curator with a token,
counts the SQL queries of one request per scenario through Django's test
client, starts the production server (gunicorn, sync workers, DEBUG off,
throttles out of reach, plus the baseline view of bench/urls.py) and beside it
the peer (bench/peer.py: the same JSON from a plain psycopg WSGI function,
under gunicorn with as many workers), checks that both answer the same bytes,
loads them with wrk (the Lua scripts in bench/), alternating service and peer
round by round, measures the CPU time of each server's processes and of
PostgreSQL per request (from /proc), streams the exports with a plain HTTP
client while sampling the workers' memory, and stops both again. It prints a
table and writes bench/results/latest.json with a timestamped copy.

Exit status: 0 when every target is met, 1 when one is not, 2 when the
benchmark could not run.
"""

import argparse
import base64
import contextlib
import datetime
import http.client
import importlib.metadata
import io
import json
import logging
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = BENCH_DIR / "results"
BIN = Path(sys.executable).parent
DEFAULT_DATA_DIR = ROOT / ".data" / "bench-postgres"

PAGE = "page_size=50"
LIST_PATH = f"/api/v1/events/?{PAGE}"
BASELINE_PATH = f"/bench/baseline/events/?{PAGE}"
EXPORT_PATHS = ("/api/v1/events/export", "/api/v1/events/export/")
WRK_TIMEOUT = "10s"

SCENARIOS = ["list", "baseline_list", "filtered", "deep", "detail", "search", "patch", "export"]
# The scenarios the peer serves too: measured against it, alternating, ROUNDS times.
PAIRED = ("list", "detail", "deep")
# Details compared byte for byte with the peer's before anything is measured.
EQUALITY_DETAILS = 20

# Targets: ratios within one run (these machines drift by tens of percent
# between runs; a ratio to a reference measured beside it holds).
TARGET_VS_PEER = {"list": 0.6, "detail": 0.5}  # service req/s over peer req/s
DEEP_VS_FIRST_CPU = 1.1  # CPU per request, deep page over first page
EXPORT_ROWS_PER_S = 300_000
EXPORT_RSS_MB = 150


class BenchError(Exception):
    """The benchmark cannot run; the message says why."""


@dataclass
class Plan:
    """What the scenarios request, chosen from the data."""

    events: int
    min_id: int
    max_id: int
    filtered_paths: list[str]
    deep_path: str
    deep_position: int
    search_words: dict[str, int]  # word -> rows of the sample it occurs in
    patch_ids: list[int]
    warmup_patch_ids: list[int]  # others, so no write of the warm-up is still in flight
    export_actor: int


@dataclass
class Load:
    """A wrk run: `script` in bench/ with `args` after `--`."""

    name: str
    script: str
    args: list[str]
    threads: int
    connections: int
    shows: str  # what it requests, for the report
    warmup_args: list[str] | None = None  # when the warm-up needs other arguments


@dataclass
class Check:
    target: str
    ok: bool | None  # None: a figure it needs is missing


@dataclass
class Outcome:
    """A scenario's figures and how they compare with its targets."""

    figures: dict
    checks: list[Check] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.figures.get("missing"):
            return "MISSING"
        if any(check.ok is False for check in self.checks):
            return "FAIL"
        if any(check.ok is None for check in self.checks):
            return "n/a"
        return "PASS"


# Environment ------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the data set")
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk scenario")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help=f"rounds of service and peer, alternating, for {', '.join(PAIRED)}",
    )
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WORKERS") or 4),
        help="gunicorn sync workers (default: env WORKERS, else 4)",
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of unrecorded load before each scenario"
    )
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="embedded PostgreSQL folder"
    )
    parser.add_argument(
        "--skip-generate",
        action="store_true",
        help="benchmark the data already in the database (no generate_synthetic)",
    )
    args = parser.parse_args()
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    args.data_dir = args.data_dir.resolve()
    return args


def bench_env(data_dir: Path) -> dict[str, str]:
    """The server's environment: production settings, the bench database,
    throttles out of reach, connections kept open."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        EMBEDDED_POSTGRES_DIR=str(data_dir),
        EMBEDDED_DB_NAME="eventledger",
        DEBUG="0",
        SECRET_KEY="bench-only-secret-key-never-use-it-in-production",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Throttles stay on, out of reach, over a one-second window: each client's
        # history then holds what a real client's holds at the service's rates
        # (at most a few hundred requests), not a minute of the whole load.
        THROTTLE_ANON="100000000/s",
        THROTTLE_USER="100000000/s",
        THROTTLE_SEARCH="100000000/s",
        THROTTLE_SEARCH_USER="100000000/s",
        # The exports are whole-table exports by an anonymous client.
        EXPORT_ANON_MAX_ROWS="1000000000",
        SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="WARNING",
        CONN_MAX_AGE="3600",
    )
    return env


def maintenance_env(env: dict[str, str]) -> dict[str, str]:
    """For migrate, the data generator and this process: no statement timeout."""
    return {**env, "DATABASE_STATEMENT_TIMEOUT_MS": "0"}


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError("wrk is not installed: sudo apt-get install wrk")
    print("==> installing wrk from Debian")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=apt_env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=apt_env)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("apt-get installed wrk, but it is not on PATH.")
    return found


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process, on the bench database (starting the
    embedded PostgreSQL if it is not running)."""
    os.environ.update(maintenance_env(env))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    # WhiteNoise looks for collected static files, which the API does not need.
    warnings.filterwarnings("ignore", message="No directory at")
    django.setup()
    # The probes' expected 404s (a missing export) are no news; errors still show.
    logging.getLogger("django.request").setLevel(logging.ERROR)


def manage(*args: str, env: dict[str, str]) -> None:
    print(f"==> manage.py {' '.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env)
    if result.returncode != 0:
        raise BenchError(f"manage.py {' '.join(args)} failed (exit status {result.returncode}).")


# Data -------------------------------------------------------------------------


def prepare_database(args: argparse.Namespace, env: dict[str, str]) -> None:
    from django.core.management import get_commands

    manage("migrate", "--noinput", env=maintenance_env(env))
    if args.skip_generate:
        print("==> --skip-generate: benchmarking the data already in the database")
        return
    if "generate_synthetic" not in get_commands():
        raise BenchError(
            "manage.py generate_synthetic does not exist (yet): it makes the synthetic "
            f"data set. To benchmark the data already in {args.data_dir} instead, "
            "rerun with --skip-generate (bench/run.py --skip-generate ...)."
        )
    manage("generate_synthetic", "--events", str(args.events), "--reuse", env=maintenance_env(env))


def bench_token() -> str:
    """The token of the `bench` user, a curator (made once, then reused)."""
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    if "rest_framework.authtoken" not in settings.INSTALLED_APPS:
        raise BenchError("rest_framework.authtoken is not installed; the patch scenario needs it.")
    call_command("setup_roles", stdout=io.StringIO())
    user, created = User.objects.get_or_create(username="bench")
    if created:
        user.set_unusable_password()
        user.save()
    user.groups.add(Group.objects.get(name="curator"))
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def sql(statement: str, params: list | tuple = ()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def data_counts() -> dict[str, int]:
    tables = {
        "events": "events_event",
        "actors": "actors_actor",
        "participants": "events_eventparticipant",
        "places": "events_place",
        "sources": "events_source",
        "evidence": "events_evidence",
    }
    return {name: sql(f"SELECT count(*) FROM {table}")[0][0] for name, table in tables.items()}


def make_plan(events: int, connections: int) -> Plan:
    if events == 0:
        raise BenchError("The bench database holds no events.")
    min_id, max_id = sql("SELECT min(id), max(id) FROM events_event")[0]
    actors = busy_actors(5)
    position = int(events * 0.9)
    newest = [
        row[0]
        for row in sql("SELECT id FROM events_event ORDER BY id DESC LIMIT %s", [2 * connections])
    ]
    patch_ids = [newest[i % len(newest)] for i in range(2 * connections)]
    return Plan(
        events=events,
        min_id=min_id,
        max_id=max_id,
        filtered_paths=filtered_paths(actors),
        deep_path=f"{LIST_PATH}&cursor={deep_cursor(position)}",
        deep_position=position,
        search_words=search_words(events),
        patch_ids=patch_ids[:connections],
        warmup_patch_ids=patch_ids[connections:],
        export_actor=actors[0],
    )


def busy_actors(count: int) -> list[int]:
    """The actors taking part in the most events."""
    rows = sql(
        "SELECT actor_id FROM events_eventparticipant GROUP BY actor_id "
        "ORDER BY count(*) DESC, actor_id LIMIT %s",
        [count],
    )
    if not rows:
        raise BenchError("No event has participants; the filtered scenario needs some.")
    return [row[0] for row in rows]


def filtered_paths(actors: list[int]) -> list[str]:
    """For each actor, a year around each quartile of the dates of its events."""
    paths = []
    for actor in actors:
        (quartiles,) = sql(
            "SELECT percentile_disc(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY e.date_sort) "
            "FROM events_event e WHERE EXISTS (SELECT 1 FROM events_eventparticipant p "
            "WHERE p.event_id = e.id AND p.actor_id = %s)",
            [actor],
        )[0]
        for middle in dict.fromkeys(quartiles):
            after = middle - datetime.timedelta(days=182)
            before = middle + datetime.timedelta(days=182)
            paths.append(
                f"/api/v1/events/?actor={actor}&date_after={after}&date_before={before}&{PAGE}"
            )
    return paths


def deep_cursor(position: int) -> str:
    """The cursor of the row at `position` in the default ordering (-date):
    its page starts just after that row (ledger.api.pagination.KeysetPagination)."""
    date_sort, pk = sql(
        "SELECT date_sort, id FROM events_event ORDER BY date_sort DESC, id DESC OFFSET %s LIMIT 1",
        [position],
    )[0]
    token = json.dumps({"o": "-date", "v": [date_sort.isoformat(), pk]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def search_words(events: int) -> dict[str, int]:
    """A few words of event titles and summaries, from frequent to rarer, with
    the number of rows of a ~5,000-row sample they occur in."""
    percent = min(100.0, 500_000 / events)
    rows = sql(
        "SELECT word, rows FROM (SELECT word, count(DISTINCT id) AS rows FROM ("
        "  SELECT id, regexp_split_to_table(lower(title || ' ' || summary), '[^[:alpha:]]+') "
        "  AS word FROM events_event TABLESAMPLE SYSTEM (%s) REPEATABLE (1)"
        ") words WHERE length(word) >= 4 GROUP BY word) counted "
        "WHERE to_tsvector('english', word) <> ''::tsvector "
        "ORDER BY rows DESC, word LIMIT 40",
        [percent],
    )
    if not rows:
        raise BenchError("No words found in event titles and summaries for the search scenario.")
    ranks = [0, 2, 5, 10, 20]
    return {rows[rank][0]: rows[rank][1] for rank in ranks if rank < len(rows)}


def search_paths(plan: Plan) -> list[str]:
    return [f"/api/v1/events/?q={urllib.parse.quote(word)}&{PAGE}" for word in plan.search_words]


# Queries per request ------------------------------------------------------------


def count_queries(client, method: str, path: str, **extra) -> dict:
    """One request through Django's test client: its status, SQL queries, and
    for a streamed answer its lines."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    lines = 0
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, **extra)
        if response.streaming:
            for chunk in response.streaming_content:
                lines += chunk.count(b"\n")
        response.close()
    return {
        "status": response.status_code,
        "queries": len(captured.captured_queries),
        "lines": lines,
        "etag": response.headers.get("ETag"),
    }


def query_counts(plan: Plan, token: str, wanted: list[str]) -> dict[str, dict]:
    """Queries of one representative request per scenario (export: a full export)."""
    from django.test import Client

    client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
    paths = {
        "list": LIST_PATH,
        "baseline_list": BASELINE_PATH,
        "filtered": plan.filtered_paths[0],
        "deep": plan.deep_path,
        "detail": f"/api/v1/events/{(plan.min_id + plan.max_id) // 2}/",
        "search": search_paths(plan)[0],
    }
    counts = {}
    for name, path in paths.items():
        if name in wanted:
            counts[name] = count_queries(client, "get", path)
    if "patch" in wanted:
        counts["patch"] = patch_queries(client, plan.patch_ids[0], token)
    if "export" in wanted:
        counts.update(export_queries(client, plan))
    return counts


def patch_queries(client, event_id: int, token: str) -> dict:
    path = f"/api/v1/events/{event_id}/"
    etag = client.get(path).headers.get("ETag", "*")
    return count_queries(
        client,
        "patch",
        path,
        data=json.dumps({"summary": f"bench revision probe {time.time_ns()}"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_IF_MATCH=etag,
        HTTP_X_CHANGE_REASON="bench",
    )


def export_runs(plan: Plan, base: str) -> dict[str, str]:
    return {
        "export_csv": f"{base}?format=csv",
        "export_jsonl": f"{base}?format=jsonl",
        "export_csv_actor": f"{base}?format=csv&actor={plan.export_actor}",
    }


def find_export(client, plan: Plan) -> str | None:
    """The export endpoint's path (with or without a trailing slash), or None
    when neither exists. Asks for the small export of one actor."""
    for base in EXPORT_PATHS:
        probe = count_queries(client, "get", export_runs(plan, base)["export_csv_actor"])
        if probe["status"] != 404:
            return base
    return None


def export_queries(client, plan: Plan) -> dict[str, dict]:
    base = find_export(client, plan)
    if base is None:
        return {name: {"missing": True} for name in export_runs(plan, EXPORT_PATHS[0])}
    plan_paths = export_runs(plan, base)
    counts = {name: count_queries(client, "get", path) for name, path in plan_paths.items()}
    for name, path in plan_paths.items():
        counts[name]["path"] = path
    return counts


# The server ---------------------------------------------------------------------


@dataclass
class Server:
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_status(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str], workers: int, log: Path, app: str = "config.wsgi:application"
) -> Iterator[Server]:
    """A gunicorn server of `app` (by default the service) on a free loopback
    port until the block ends."""
    port = free_port()
    command = [
        str(BIN / "gunicorn"),
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        # A whole-table export streams for longer than the default 30 s.
        "--timeout",
        "600",
    ]
    print(f"==> {' '.join(command[1:])} (log: {log})", flush=True)
    with log.open("w") as output:
        # A session of its own: Ctrl-C reaches this script, which stops the server.
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(port, process, log)
        yield Server(port=port, pid=process.pid)
    finally:
        stop(process)


def wait_ready(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(OSError):
            if get_status(port, "/readyz") == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"gunicorn did not become ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # graceful: workers finish their requests
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    print("==> gunicorn stopped", flush=True)


# The peer ---------------------------------------------------------------------


def peer_env(env: dict[str, str]) -> dict[str, str]:
    """The peer's environment: the bench database as a libpq connection
    string, and the service's quad classes (bench/peer.py)."""
    from django.db import connection
    from psycopg.conninfo import make_conninfo

    from events.models import QUAD_CLASS

    connection.ensure_connection()
    params = connection.get_connection_params()
    keys = ("host", "port", "dbname", "user", "password")
    return {
        **env,
        "PEER_DATABASE": make_conninfo(**{k: v for k, v in params.items() if k in keys and v}),
        "PEER_QUAD": json.dumps({str(t): str(q) for t, q in QUAD_CLASS.items()}),
    }


def fetch(port: int, path: str) -> tuple[int, bytes]:
    """Status and body of a GET, with the Host header both servers are asked
    with, so that the URLs in their bodies agree."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Host": "localhost"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def check_peer(service: Server, peer: Server, plan: Plan) -> int:
    """Compare the service's and the peer's answers byte for byte (the first
    page, its next page, the deep page and some details); BenchError on the
    first difference. Returns the number of URLs compared."""
    status, first = fetch(service.port, LIST_PATH)
    if status != 200:
        raise BenchError(f"the service answered {status} to {LIST_PATH}")
    following = json.loads(first)["next"].split("localhost", 1)[1]
    step = max(1, (plan.max_id - plan.min_id) // EQUALITY_DETAILS)
    details = [f"/api/v1/events/{pk}/" for pk in range(plan.min_id, plan.max_id + 1, step)]
    paths = [LIST_PATH, following, plan.deep_path, *details[:EQUALITY_DETAILS]]
    for path in paths:
        mine, theirs = fetch(service.port, path), fetch(peer.port, path)
        if mine != theirs:
            at = next(
                (i for i, (a, b) in enumerate(zip(mine[1], theirs[1], strict=False)) if a != b),
                min(len(mine[1]), len(theirs[1])),
            )
            raise BenchError(
                f"the peer's answer to {path} differs from the service's: "
                f"{mine[0]} / {theirs[0]}, from byte {at}: "
                f"{mine[1][at - 60 : at + 60]!r} / {theirs[1][at - 60 : at + 60]!r}"
            )
    return len(paths)


class CpuMeter:
    """CPU time (user + system) of a server's processes (the gunicorn master
    and its workers) and of PostgreSQL's (the postmaster and every backend),
    read from /proc through psutil: `with meter: ...`, then `meter.ms`."""

    def __init__(self, server_pid: int, postgres_pid: int):
        self.roots = {"server": server_pid, "postgresql": postgres_pid}
        self.ms: dict[str, float] = {}

    @staticmethod
    def tree_ms(pid: int) -> dict[int, float]:
        """CPU ms so far of a process and its descendants, by pid."""
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return {}
        times = {}
        for process in processes:
            with contextlib.suppress(psutil.Error):
                cpu = process.cpu_times()
                times[process.pid] = (cpu.user + cpu.system) * 1000
        return times

    def __enter__(self) -> "CpuMeter":
        self.before = {name: self.tree_ms(pid) for name, pid in self.roots.items()}
        return self

    def __exit__(self, *exc) -> None:
        for name, pid in self.roots.items():
            after, before = self.tree_ms(pid), self.before[name]
            # A process that ended meanwhile is lost; one that started counts whole.
            self.ms[name] = sum(ms - before.get(p, 0.0) for p, ms in after.items())


def postgres_pid(data_dir: Path) -> int:
    """The postmaster of the bench database (the embedded server's)."""
    pid_file = data_dir / "postmaster.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        raise BenchError(f"no running PostgreSQL in {data_dir} (no {pid_file.name})") from None


# Load ---------------------------------------------------------------------------


def wrk_loads(plan: Plan, token: str, connections: int) -> dict[str, Load]:
    threads = min(connections, len(os.sched_getaffinity(0)))

    def paths(name: str, values: list[str]) -> Load:
        shows = values[0] + (f" (+{len(values) - 1} more in turn)" if len(values) > 1 else "")
        return Load(name, "paths.lua", values, threads, connections, shows)

    return {
        "list": paths("list", [LIST_PATH]),
        "baseline_list": paths("baseline_list", [BASELINE_PATH]),
        "filtered": paths("filtered", plan.filtered_paths),
        "deep": paths("deep", [plan.deep_path]),
        "detail": Load(
            "detail",
            "detail.lua",
            [str(plan.min_id), str(plan.max_id)],
            threads,
            connections,
            f"/api/v1/events/<random id from {plan.min_id} to {plan.max_id}>/",
        ),
        "search": paths("search", search_paths(plan)),
        "patch": Load(
            "patch",
            "patch.lua",
            [token, *map(str, plan.patch_ids)],
            connections,
            connections,
            "PATCH /api/v1/events/<id>/ with If-Match, one event per connection",
            warmup_args=[token, *map(str, plan.warmup_patch_ids)],
        ),
    }


def run_wrk(wrk: str, server: Server, load: Load, seconds: int, *, warmup: bool = False) -> dict:
    args = load.warmup_args if warmup and load.warmup_args else load.args
    command = [
        wrk,
        "-t",
        str(load.threads),
        "-c",
        str(load.connections),
        "-d",
        f"{seconds}s",
        "--latency",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        str(BENCH_DIR / load.script),
        server.url,
        "--",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return summarize(json.loads(line.removeprefix("BENCH_RESULT ")))
    raise BenchError(f"wrk gave no result for {load.name}:\n{result.stdout}\n{result.stderr}")


def summarize(raw: dict) -> dict:
    seconds = raw["duration_us"] / 1e6
    statuses = {int(code): count for code, count in raw["statuses"].items()}
    non_2xx = sum(count for code, count in statuses.items() if not 200 <= code < 300)
    socket_errors = {kind: raw["errors"][kind] for kind in ("connect", "read", "write", "timeout")}
    latency = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": round(latency["p50"] / 1000, 2),
        "p90_ms": round(latency["p90"] / 1000, 2),
        "p99_ms": round(latency["p99"] / 1000, 2),
        "max_ms": round(latency["max"] / 1000, 2),
        "mean_ms": round(latency["mean"] / 1000, 2),
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "non_2xx": non_2xx,
        "socket_errors": socket_errors,
        "errors": non_2xx + sum(socket_errors.values()),
        "bytes": raw["bytes"],
    }


class RssSampler(threading.Thread):
    """Samples the resident memory of every gunicorn worker every 50 ms."""

    def __init__(self, master_pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.master = psutil.Process(master_pid)
        self.interval = interval
        self.before: dict[int, int] = {}
        self.peaks: dict[int, int] = {}
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.is_set():
            self.sample()
            self.finished.wait(self.interval)

    def sample(self) -> None:
        for worker in self.master.children():
            try:
                rss = worker.memory_info().rss
            except psutil.Error:
                continue  # a worker being replaced
            self.before.setdefault(worker.pid, rss)
            self.peaks[worker.pid] = max(self.peaks.get(worker.pid, 0), rss)

    def summary(self) -> dict[str, float]:
        """The peak over all workers, and the worker that grew most (the one
        that served the request) before and at its peak, in MB."""
        if not self.peaks:
            return {}
        grown = max(self.peaks, key=lambda pid: self.peaks[pid] - self.before[pid])
        return {
            "peak_rss_mb": round(max(self.peaks.values()) / 2**20, 1),
            "serving_worker_rss_before_mb": round(self.before[grown] / 2**20, 1),
            "serving_worker_peak_rss_mb": round(self.peaks[grown] / 2**20, 1),
        }

    def __enter__(self) -> "RssSampler":
        self.sample()
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.finished.set()
        self.join()
        self.sample()


def run_export(server: Server, path: str) -> dict:
    """Stream one export, counting its lines, while sampling the workers' memory."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    status = first_byte = error = None
    lines = size = 0
    last = b"\n"
    with RssSampler(server.pid) as sampler:
        started = time.perf_counter()
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            status = response.status
            first_byte = time.perf_counter() - started
            while chunk := response.read(65536):
                lines += chunk.count(b"\n")
                size += len(chunk)
                last = chunk[-1:]
        except (OSError, http.client.HTTPException) as exc:
            error = f"the stream broke after {size:,} bytes: {type(exc).__name__}: {exc}"
        finally:
            elapsed = time.perf_counter() - started
            connection.close()
    if last != b"\n":
        lines += 1
    rows = max(0, lines - 1) if "format=csv" in path else lines  # CSV has a header line
    return {
        "status": status,
        "rows": rows,
        "bytes": size,
        "seconds": round(elapsed, 3),
        "first_byte_ms": None if first_byte is None else round(first_byte * 1000, 1),
        "rows_per_s": round(rows / elapsed),
        **sampler.summary(),
        "errors": int(error is not None or status is None or not 200 <= status < 300),
        "error": error,
    }


# Targets ------------------------------------------------------------------------


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


def ratios(figures: dict[str, dict]) -> dict[str, float | None]:
    """Each paired scenario's req/s over the peer's; the deep page's CPU per
    request over the first page's; every other scenario's CPU per request
    over the list's."""

    def figure(name: str, key: str) -> float | None:
        return figures.get(name, {}).get(key)

    found = {
        f"{name}_vs_peer_rps": ratio(figure(name, "rps"), figure(f"peer_{name}", "rps"))
        for name in PAIRED
    }
    found.update(
        {
            f"{name}_vs_peer_cpu": ratio(
                figure(name, "cpu_ms_per_request"), figure(f"peer_{name}", "cpu_ms_per_request")
            )
            for name in PAIRED
        }
    )
    list_cpu = figure("list", "cpu_ms_per_request")
    for name in ("deep", "filtered", "search", "patch", "baseline_list"):
        found[f"{name}_vs_list_cpu"] = ratio(figure(name, "cpu_ms_per_request"), list_cpu)
    return found


def at_least(value: float | None, floor: float) -> bool | None:
    return None if value is None else value >= floor


def wrk_checks(name: str, figures: dict, ratio_of: dict) -> list[Check]:
    checks = []
    if name in TARGET_VS_PEER:
        floor = TARGET_VS_PEER[name]
        value = ratio_of[f"{name}_vs_peer_rps"]
        checks.append(Check(f"≥{floor}× peer req/s", at_least(value, floor)))
    if name == "deep":
        value = ratio_of["deep_vs_list_cpu"]
        checks.append(
            Check(
                f"CPU/req ≤{DEEP_VS_FIRST_CPU}× first page",
                None if value is None else value <= DEEP_VS_FIRST_CPU,
            )
        )
    return checks


def common_checks(figures: dict) -> list[Check]:
    checks = [Check("no errors", figures.get("errors", 0) == 0)]
    probe = figures.get("probe_status")
    if probe is not None and not 200 <= probe < 300:
        checks.append(Check(f"probe request answered {probe}", False))
    return checks


def export_checks(name: str, figures: dict) -> list[Check]:
    if figures.get("missing"):
        return [Check("endpoint exists", False)]
    checks = []
    if name != "export_csv_actor":
        checks.append(
            Check(f"≥{EXPORT_ROWS_PER_S:,} rows/s", figures["rows_per_s"] >= EXPORT_ROWS_PER_S)
        )
    checks.append(Check(f"RSS <{EXPORT_RSS_MB} MB", figures["peak_rss_mb"] < EXPORT_RSS_MB))
    return checks


def evaluate(figures: dict[str, dict]) -> dict[str, Outcome]:
    ratio_of = ratios(figures)
    outcomes = {}
    for name, values in figures.items():
        if name.startswith("export"):
            checks = export_checks(name, values)
        else:
            checks = wrk_checks(name, values, ratio_of)
        if not values.get("missing"):
            checks += common_checks(values)
        outcomes[name] = Outcome(values, checks)
    return outcomes


# Report -------------------------------------------------------------------------


def cell(value, spec: str = "") -> str:
    return "—" if value is None else format(value, spec)


def print_report(outcomes: dict[str, Outcome], ratio_of: dict) -> None:
    print()
    header = (
        f"{'scenario':<15}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms':>8}{'of it PG':>9}"
        f"{'queries':>9}{'errors':>8}"
    )
    print(f"{header}  {'target':<34}result")
    for name, outcome in outcomes.items():
        if name.startswith("export"):
            continue
        f = outcome.figures
        targets = ", ".join(c.target for c in outcome.checks if c.target != "no errors")
        print(
            f"{name:<15}{cell(f.get('rps'), '.1f'):>9}{cell(f.get('p50_ms'), '.2f'):>9}"
            f"{cell(f.get('p99_ms'), '.2f'):>9}{cell(f.get('cpu_ms_per_request'), '.2f'):>8}"
            f"{cell(f.get('postgresql_cpu_ms_per_request'), '.2f'):>9}"
            f"{cell(f.get('queries')):>9}{cell(f.get('errors')):>8}  "
            f"{targets or 'reported':<34}{outcome.verdict}"
        )
    exports = {name: o for name, o in outcomes.items() if name.startswith("export")}
    if exports:
        print()
        header = f"{'export':<18}{'rows':>10}{'rows/s':>10}{'seconds':>9}{'RSS MB':>8}"
        print(f"{header}{'queries':>9}{'errors':>8}  {'target':<31}result")
        for name, outcome in exports.items():
            f = outcome.figures
            targets = ", ".join(c.target for c in outcome.checks if c.target != "no errors")
            print(
                f"{name:<18}{cell(f.get('rows'), ','):>10}{cell(f.get('rows_per_s'), ','):>10}"
                f"{cell(f.get('seconds'), '.2f'):>9}{cell(f.get('peak_rss_mb'), '.1f'):>8}"
                f"{cell(f.get('queries')):>9}{cell(f.get('errors')):>8}  {targets:<31}"
                f"{outcome.verdict}"
            )
    print()
    print("CPU ms: per request, the server's processes and PostgreSQL's together.")
    for name in PAIRED:
        rounds = outcomes.get(name, Outcome({})).figures.get("rounds_vs_peer_rps")
        spread = f" (rounds: {', '.join(map(str, rounds))})" if rounds else ""
        print(
            f"{name + ' / peer':<24} req/s {cell(ratio_of[f'{name}_vs_peer_rps']):>5}{spread}, "
            f"CPU per request {cell(ratio_of[f'{name}_vs_peer_cpu'])}"
        )
    for name in ("deep", "filtered", "search", "patch", "baseline_list"):
        print(f"{name + ' / list':<24} CPU per request {cell(ratio_of[f'{name}_vs_list_cpu'])}")
    for name, outcome in outcomes.items():
        failed = [c.target for c in outcome.checks if c.ok is False]
        if failed:
            print(f"! {name}: missed {'; '.join(failed)}{problem_details(outcome.figures)}")


def problem_details(figures: dict) -> str:
    if figures.get("missing"):
        return " (no export endpoint: GET /api/v1/events/export answers 404)"
    details = []
    if figures.get("non_2xx"):
        details.append(", ".join(f"{n}× {code}" for code, n in figures["statuses"].items()))
    if figures.get("error"):
        details.append(figures["error"])
    socket_errors = {k: v for k, v in figures.get("socket_errors", {}).items() if v}
    if socket_errors:
        details.append(", ".join(f"{v} {k}" for k, v in socket_errors.items()))
    return f" ({'; '.join(details)})" if details else ""


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_state() -> dict:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip()

    with contextlib.suppress(OSError):
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    return {}


def machine_info(wrk: str) -> dict:
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "postgresql": sql("SHOW server_version")[0][0],
        "python": platform.python_version(),
        "django": importlib.metadata.version("django"),
        "gunicorn": importlib.metadata.version("gunicorn"),
        "wrk": wrk_version.splitlines()[0] if wrk_version else "unknown",
        "platform": platform.platform(),
    }


def write_results(report: dict) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"bench-{stamp}.json").write_text(text)
    latest = RESULTS_DIR / "latest.json"
    latest.write_text(text)
    return latest


# Main ---------------------------------------------------------------------------


def measure(args, wrk: str, env: dict, plan: Plan, token: str) -> dict[str, dict]:
    """Queries per request first (in this process), then the load on gunicorn:
    the paired scenarios on the service and the peer in turn, round by round,
    the others on the service alone."""
    print("==> counting queries per request (Django test client)", flush=True)
    probes = query_counts(plan, token, args.only)
    loads = wrk_loads(plan, token, args.connections)
    postgres = postgres_pid(args.data_dir)
    figures: dict[str, dict] = {}
    log = args.data_dir.parent / "bench-server.log"
    peer_log = args.data_dir.parent / "bench-peer.log"
    with (
        gunicorn(env, args.workers, log) as server,
        gunicorn(peer_env(env), args.workers, peer_log, app="bench.peer:application") as peer,
    ):
        compared = check_peer(server, peer, plan)
        print(f"==> the peer answers the same bytes as the service ({compared} URLs)", flush=True)
        for name in args.only:
            if name == "export":
                figures.update(measure_exports(server, probes))
                continue
            load = loads[name]
            if name in PAIRED:
                figures.update(measure_pair(args, wrk, load, server, peer, postgres))
            else:
                print(f"==> {name}: {load.shows}", flush=True)
                figures[name] = measure_load(args, wrk, load, server, postgres)
            figures[name].update(
                path=load.shows,
                queries=probes[name]["queries"],
                probe_status=probes[name]["status"],
            )
    return figures


def measure_load(args, wrk: str, load: Load, server: Server, postgres: int, warmup=True) -> dict:
    """One wrk run (after a warm-up), with its CPU per request."""
    if warmup and args.warmup > 0:
        run_wrk(wrk, server, load, args.warmup, warmup=True)
    with CpuMeter(server.pid, postgres) as meter:
        figures = run_wrk(wrk, server, load, args.duration)
    figures["cpu_ms"] = {name: round(ms, 1) for name, ms in meter.ms.items()}
    return with_cpu_per_request(figures)


def with_cpu_per_request(figures: dict) -> dict:
    requests = max(1, figures["requests"])
    server_ms, postgres_ms = figures["cpu_ms"]["server"], figures["cpu_ms"]["postgresql"]
    figures["cpu_ms_per_request"] = round((server_ms + postgres_ms) / requests, 3)
    figures["postgresql_cpu_ms_per_request"] = round(postgres_ms / requests, 3)
    return figures


def measure_pair(args, wrk, load: Load, server: Server, peer: Server, postgres: int) -> dict:
    """`load` on the service and on the peer, alternating which goes first,
    `args.rounds` times; each side's figures over all its rounds."""
    runs: dict[str, list[dict]] = {"service": [], "peer": []}
    for round_ in range(args.rounds):
        sides = [("service", server), ("peer", peer)]
        for side, target in sides if round_ % 2 == 0 else sides[::-1]:
            print(f"==> {load.name} on the {side}, round {round_ + 1}: {load.shows}", flush=True)
            runs[side].append(measure_load(args, wrk, load, target, postgres, warmup=round_ == 0))
    service, reference = combine(runs["service"]), combine(runs["peer"])
    service["rounds_vs_peer_rps"] = [
        ratio(mine["rps"], theirs["rps"])
        for mine, theirs in zip(runs["service"], runs["peer"], strict=True)
    ]
    return {load.name: service, f"peer_{load.name}": reference}


def combine(runs: list[dict]) -> dict:
    """The figures of several runs of one scenario as one: requests, time and
    CPU summed, latencies the median of the runs', errors summed."""
    requests = sum(run["requests"] for run in runs)
    seconds = sum(run["seconds"] for run in runs)
    statuses: dict[str, int] = {}
    for run in runs:
        for code, count in run["statuses"].items():
            statuses[code] = statuses.get(code, 0) + count
    combined = {
        "requests": requests,
        "seconds": round(seconds, 2),
        "rps": round(requests / seconds, 1) if seconds else 0.0,
        "rounds_rps": [run["rps"] for run in runs],
        "statuses": statuses,
        "cpu_ms": {
            name: round(sum(run["cpu_ms"][name] for run in runs), 1)
            for name in ("server", "postgresql")
        },
    }
    for key in ("p50_ms", "p90_ms", "p99_ms", "mean_ms"):
        combined[key] = round(statistics.median(run[key] for run in runs), 2)
    combined["max_ms"] = max(run["max_ms"] for run in runs)
    for key in ("non_2xx", "errors", "bytes"):
        combined[key] = sum(run[key] for run in runs)
    combined["socket_errors"] = {
        kind: sum(run["socket_errors"][kind] for run in runs)
        for kind in ("connect", "read", "write", "timeout")
    }
    return with_cpu_per_request(combined)


def measure_exports(server: Server, probes: dict[str, dict]) -> dict[str, dict]:
    figures = {}
    for name, probe in probes.items():
        if not name.startswith("export"):
            continue
        if probe.get("missing"):
            print(f"==> {name}: the export endpoint is missing (404)", flush=True)
            figures[name] = {"missing": True}
            continue
        print(f"==> {name}: GET {probe['path']}", flush=True)
        figures[name] = run_export(server, probe["path"])
        figures[name].update(
            path=probe["path"], queries=probe["queries"], probe_status=probe["status"]
        )
    return figures


def run(args: argparse.Namespace) -> int:
    started = datetime.datetime.now(datetime.UTC)
    env = bench_env(args.data_dir)
    wrk = ensure_wrk()
    setup_django(env)
    prepare_database(args, env)
    token = bench_token()
    counts = data_counts()
    plan = make_plan(counts["events"], args.connections)
    print(
        f"==> {counts['events']:,} events (asked for {args.events:,}); "
        f"{args.workers} workers, {args.connections} connections, {args.duration} s per scenario"
    )
    figures = measure(args, wrk, env, plan, token)
    outcomes = evaluate(figures)
    ratio_of = ratios(figures)
    print_report(outcomes, ratio_of)
    passed = all(outcome.verdict == "PASS" for outcome in outcomes.values())
    report = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git": git_state(),
        "machine": machine_info(wrk),
        "config": {
            "workers": args.workers,
            "worker_class": "sync",
            "connections": args.connections,
            "wrk_threads": min(args.connections, len(os.sched_getaffinity(0))),
            "duration_s": args.duration,
            "rounds_with_peer": args.rounds,
            "warmup_s": args.warmup,
            "events_requested": args.events,
            "scenarios": args.only,
        },
        "data": counts,
        "plan": {
            "filtered_paths": plan.filtered_paths,
            "deep_path": plan.deep_path,
            "deep_position": plan.deep_position,
            "search_words_sample_rows": plan.search_words,
            "detail_ids": [plan.min_id, plan.max_id],
            "patch_ids": plan.patch_ids,
            "export_actor": plan.export_actor,
        },
        "scenarios": {
            name: {
                **outcome.figures,
                "targets": [{"target": c.target, "ok": c.ok} for c in outcome.checks],
                "result": outcome.verdict,
            }
            for name, outcome in outcomes.items()
        },
        "ratios": ratio_of,
        "passed": passed,
    }
    print(f"\nResults: {write_results(report).relative_to(ROOT)}")
    return 0 if passed else 1


def main() -> int:
    # A plain `kill` stops the run like Ctrl-C does: the server is stopped first.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    try:
        return run(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
