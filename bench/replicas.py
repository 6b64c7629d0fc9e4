"""Replica lag and the router's cost, on this machine (docs/scaling.md).

A new primary with a streaming standby (tests/standby.py), then:

- lag: N single-row commits on the primary, each followed until the standby
  shows the row (polled on a connection of its own): the time from the
  commit's return to its visibility there;
- routing overhead: the seeded service under gunicorn (1 worker) twice on the
  same database, without replicas and with the standby as its replica,
  answering the same reads (event list, event detail) in alternating rounds;
  the worker's CPU time (/proc) per request, and the wall time.

    .venv/bin/python bench/replicas.py --writes 500 --requests 300 --rounds 5
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("SECRET_KEY", "bench-only")

from tests.live import call, manage
from tests.standby import caught_up, gunicorn, primary_with_standby


def lag(standby, writes: int) -> list[float]:
    with standby.primary() as primary, standby.standby() as replica:
        primary.execute("CREATE TABLE bench_lag (id int PRIMARY KEY)")
        caught_up(standby)
        seen = []
        for n in range(writes):
            primary.execute("INSERT INTO bench_lag VALUES (%s)", [n])  # autocommit
            committed = time.perf_counter()
            while not replica.execute("SELECT 1 FROM bench_lag WHERE id = %s", [n]).fetchone():
                pass
            seen.append((time.perf_counter() - committed) * 1000)
            time.sleep(0.005)
        return seen


def worker_cpu(log: Path) -> float:
    """CPU seconds of the gunicorn worker (the newest child of the server's)."""
    pid = int(log.read_text().rsplit("Booting worker with pid: ", 1)[1].split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="el-", dir="/tmp") as folder:
        os.chmod(folder, 0o755)
        with primary_with_standby(Path(folder)) as standby:
            seen = lag(standby, args.writes)
            print(
                f"lag over {len(seen)} commits: median {statistics.median(seen):.2f} ms, "
                f"p95 {statistics.quantiles(seen, n=20)[18]:.2f} ms, max {max(seen):.2f} ms"
            )
            env = {
                **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
                "DEBUG": "0",
                "ALLOWED_HOSTS": "127.0.0.1",
                "THROTTLE_ANON": "100000000/min",
                "EMBEDDED_POSTGRES_DIR": str(standby.primary_dir),
                "EMBEDDED_DB_NAME": "bench_replicas",
            }
            manage("migrate", "--noinput", env=env)
            manage("seed", env=env)
            caught_up(standby)
            routed_env = {**env, "DATABASE_REPLICA_URLS": standby.url()}
            logs = {"primary only": Path(folder) / "plain.log", "router": Path(folder) / "r.log"}
            cpu = {name: [] for name in logs}
            wall = {name: [] for name in logs}
            with (
                gunicorn(env, logs["primary only"]) as plain,
                gunicorn(routed_env, logs["router"]) as routed,
            ):
                bases = {"primary only": plain, "router": routed}
                paths = ["/api/v1/events/?page_size=20", "/api/v1/events/1/"]
                for base in bases.values():  # warm up
                    for _ in range(50):
                        call("GET", base + paths[0])
                for _ in range(args.rounds):
                    for name, base in bases.items():
                        before, started = worker_cpu(logs[name]), time.perf_counter()
                        for n in range(args.requests):
                            assert call("GET", base + paths[n % 2])[0] == 200
                        elapsed = time.perf_counter() - started
                        cpu[name].append((worker_cpu(logs[name]) - before) / args.requests * 1000)
                        wall[name].append(elapsed / args.requests * 1000)
            for name in logs:
                print(
                    f"{name:>12}: worker CPU {statistics.median(cpu[name]):.2f} ms/request "
                    f"(rounds {', '.join(f'{c:.2f}' for c in cpu[name])}), "
                    f"wall {statistics.median(wall[name]):.2f} ms/request"
                )
            ratio = statistics.median(cpu["router"]) / statistics.median(cpu["primary only"])
            print(f"router / primary only, worker CPU per read: {ratio:.3f}")


if __name__ == "__main__":
    main()
