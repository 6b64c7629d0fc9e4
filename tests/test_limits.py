"""Throttles count across every server process when a shared cache is set."""

import os
import socket
import subprocess

import pytest

from tests.live import BIN, call, live_service

REDIS = ("127.0.0.1", 6379)


def redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif("DATABASE_URL" in os.environ, reason="runs on the embedded server")
@pytest.mark.skipif(not redis_answers(), reason="no Redis on 127.0.0.1:6379 to share counters")
def test_throttles_count_across_all_server_processes(tmp_path):
    with live_service(
        tmp_path,
        workers=4,
        seed=False,
        superuser=False,
        THROTTLE_ANON="12/min",
        CACHE_URL="redis://127.0.0.1:6379/15",
    ) as service:
        # Clear this test's counters, then spend the budget of 12 across 4 workers.
        subprocess.run(
            [str(BIN / "python"), "-c", "import redis; redis.Redis(db=15).flushdb()"], check=True
        )
        statuses = [call("GET", f"{service.url}/api/v1/places/")[0] for _ in range(16)]
    assert statuses.count(200) == 12, statuses
    assert statuses[12:] == [429] * 4
