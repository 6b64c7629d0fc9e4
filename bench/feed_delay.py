"""How long a committed change takes to reach a client following the change
feed, while another transaction stays open for 30 seconds.

`make feed-delay` runs the service (gunicorn, on a database of its own in the
embedded PostgreSQL), opens a transaction that holds a transaction id for
HOLD seconds (in the service's database, and one in another database), and
meanwhile changes an actor every 0.2 s through the API while a follower polls
`/api/v1/changes/` every 0.05 s from its last cursor. It prints, per write,
the time from the write's answer to the follower seeing it, and checks that
every write was seen once, in order. The figure is reported in
docs/reliability.md.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "feed-delay-only")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402

from tests.live import call, embedded_admin_connection, live_service  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold the transaction")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as logs, live_service(Path(logs), seed=False) as service:
        auth = {"Authorization": f"Token {service.token}"}
        status, _, actor = call(
            "POST",
            f"{service.url}/api/v1/actors/",
            {"slug": "followed", "name": "Followed", "kind": "group"},
            auth,
        )
        assert status == 201, actor
        cursor = call("GET", f"{service.url}/api/v1/changes/?page_size=1000")[2]["cursor"]

        database = service.env["EMBEDDED_DB_NAME"]
        same = psycopg.connect(
            host=str(django.conf.settings.EMBEDDED_POSTGRES_DIR), user="postgres", dbname=database
        )
        other = embedded_admin_connection()
        other.autocommit = False
        for connection in (same, other):  # each takes a transaction id and waits
            connection.execute("SELECT txid_current()")

        written: dict[int, float] = {}
        seen: dict[int, float] = {}
        order: list[int] = []
        stop = threading.Event()

        def follow():
            nonlocal cursor
            while not stop.is_set() or len(seen) < len(written):
                body = call("GET", f"{service.url}/api/v1/changes/?after={cursor}")[2]
                now = time.monotonic()
                for change in body["results"]:
                    if change["id"] == actor["id"] and change["action"] == "update":
                        seen.setdefault(change["revision"], now)
                        order.append(change["revision"])
                cursor = body["cursor"]
                time.sleep(0.05)
                if stop.is_set() and time.monotonic() - stop_time[0] > 10:
                    break

        stop_time = [0.0]
        follower = threading.Thread(target=follow)
        follower.start()
        revision = 1
        started = time.monotonic()
        while time.monotonic() - started < args.hold - 1:
            status, _, body = call(
                "PATCH",
                actor["url"],
                {"name": f"Followed {revision}"},
                {**auth, "If-Match": f'"{revision}"'},
            )
            assert status == 200, body
            revision = body["revision"]
            written[revision] = time.monotonic()
            time.sleep(0.2)
        stop_time[0] = time.monotonic()
        stop.set()
        follower.join()
        same.rollback()
        other.rollback()
        same.close()
        other.close()

    delays = [seen[r] - written[r] for r in written if r in seen]
    missing = sorted(set(written) - set(seen))
    print(f"held a transaction open for {args.hold:.0f} s in the service's database and another")
    print(f"writes: {len(written)}, seen by the follower: {len(seen)}, missing: {missing}")
    if delays:
        print(
            f"delay from the write's answer to the feed: median {statistics.median(delays):.3f} s, "
            f"max {max(delays):.3f} s"
        )
    in_order = order == sorted(order) and len(order) == len(set(order))
    print(f"each change seen once, in order: {in_order}")
    return 0 if not missing and in_order and delays and max(delays) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
