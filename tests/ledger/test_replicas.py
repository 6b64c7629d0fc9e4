"""Reads from a real streaming replica (ledger/routing.py, ledger/replicas.py).

A new primary and a standby streaming from it (tests/standby.py: the embedded
server's own binaries, so a fresh clone runs this), one database migrated and
seeded on the primary, and the service under gunicorn with
`DATABASE_REPLICA_URLS` naming the standby, twice:

- `routed`: the replica is checked once and stays in rotation, so a read that
  goes to it while its replay is paused (`pg_wal_replay_pause()`) sees the
  older state: that is how these tests tell which database answered;
- `bounded`: checked every 50 ms and taken out of rotation past 500 ms of lag.

Nothing here asserts a duration: waits poll for a state, with a deadline.
"""

import json
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.live import call, manage
from tests.standby import Standby, caught_up, gunicorn, primary_with_standby, wait_for
from tests.test_changes import FEED, MIRROR_SOURCE_TEXT, mirror_from_the_feed, read_feed

pytestmark = pytest.mark.skipif(
    "DATABASE_URL" in os.environ, reason="the replica tests build their own embedded servers"
)

POSITION = "X-Commit-Position"
DATABASE = "eventledger_replicas"


class Answer:
    """What a Django test client's response offers the mirror test."""

    def __init__(self, status: int, headers: dict, body):
        self.status_code, self.headers, self.body = status, headers, body
        self.content = json.dumps(body) if not isinstance(body, str) else body

    def json(self):
        return self.body


class HttpClient:
    """The mirror test's client over HTTP. With `carry`, it sends back the
    latest `X-Commit-Position` it was answered, as the SDKs do."""

    def __init__(self, base: str, token: str | None = None, *, carry: bool = False):
        self.base, self.token, self.carry = base, token, carry
        self.position: str | None = None
        self.seen: list[dict] = []  # every change the feed answered

    def request(self, method: str, path: str, body=None, params=None) -> Answer:
        url = path if path.startswith("http") else self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        headers = {"Authorization": f"Token {self.token}", "If-Match": "*"} if self.token else {}
        if self.carry and self.position:
            headers[POSITION] = self.position
        status, answer_headers, data = call(method, url, body, headers)
        if answer_headers.get(POSITION):
            self.position = answer_headers[POSITION]
        if method == "GET" and urllib.parse.urlparse(url).path == FEED and status == 200:
            self.seen += data["results"]
        return Answer(status, answer_headers, data)

    def get(self, path, params=None, **kwargs) -> Answer:
        return self.request("GET", path, params=params)

    def post(self, path, data=None, **kwargs) -> Answer:
        return self.request("POST", path, data)

    def patch(self, path, data=None, **kwargs) -> Answer:
        return self.request("PATCH", path, data)

    def delete(self, path, **kwargs) -> Answer:
        return self.request("DELETE", path)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("replicas")
    with primary_with_standby(folder) as standby:
        env = {
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            "DEBUG": "0",
            "SECRET_KEY": "replica-test-only",
            "ALLOWED_HOSTS": "127.0.0.1",
            "THROTTLE_ANON": "1000000/min",
            "THROTTLE_USER": "1000000/min",
            "EMBEDDED_POSTGRES_DIR": str(standby.primary_dir),
            "EMBEDDED_DB_NAME": DATABASE,
            "DJANGO_SUPERUSER_PASSWORD": "replica-password-1",
        }
        manage("migrate", "--noinput", env=env)
        manage("seed", env=env)
        manage("createsuperuser", "--noinput", "--username", "r", "--email", "r@x.org", env=env)
        token = manage("drf_create_token", "r", env=env).split()[2]
        caught_up(standby)
        replicated = {**env, "DATABASE_REPLICA_URLS": standby.url()}
        routed_env = {
            **replicated,
            "DATABASE_REPLICA_CHECK_MS": "600000",
            "DATABASE_REPLICA_MAX_LAG_MS": "600000",
        }
        bounded_env = {
            **replicated,
            "DATABASE_REPLICA_CHECK_MS": "50",
            "DATABASE_REPLICA_MAX_LAG_MS": "500",
        }
        with (
            gunicorn(routed_env, folder / "routed.log") as routed,
            gunicorn(bounded_env, folder / "bounded.log") as bounded,
        ):
            yield {
                "standby": standby,
                "routed": routed,
                "bounded": bounded,
                "token": token,
                "log": folder / "routed.log",
            }


@contextmanager
def replay_paused(standby: Standby) -> Iterator[None]:
    standby.pause_replay()
    try:
        yield
    finally:
        standby.resume_replay()
        caught_up(standby)


def new_actor(client: HttpClient, slug: str) -> Answer:
    created = client.post("/api/v1/actors/", {"slug": slug, "name": slug.title(), "kind": "group"})
    assert created.status_code == 201, created.body
    return created


def test_reads_go_to_the_replica_writes_and_their_reads_to_the_primary(cluster):
    writer = HttpClient(cluster["routed"], cluster["token"])
    reader = HttpClient(cluster["routed"])
    assert reader.get("/api/v1/actors/").status_code == 200  # the replica joins rotation
    with replay_paused(cluster["standby"]):
        created = new_actor(writer, "routed-one")
        actor = created.body
        # The replica has not replayed the create: this read was served there.
        assert reader.get(f"/api/v1/actors/{actor['id']}/").status_code == 404
        # The write's If-Match is compared on the primary, which has the record.
        updated = writer.patch(f"/api/v1/actors/{actor['id']}/", {"name": "Renamed"})
        assert updated.status_code == 200, updated.body
        assert updated.body["revision"] == 2
        # Sent back, the write's position is served by the primary: read-your-writes.
        mine = HttpClient(cluster["routed"])
        mine.carry, mine.position = True, updated.headers[POSITION]
        read = mine.get(f"/api/v1/actors/{actor['id']}/")
        assert (read.status_code, read.body["name"], read.body["revision"]) == (200, "Renamed", 2)
        # The change feed read from the replica does not show the change yet.
        changes, _ = read_feed(reader, resource=["actors"])
        assert actor["id"] not in {change["id"] for change in changes}
    # Replayed: the replica serves the record as the primary has it.
    wait_for(
        lambda: reader.get(f"/api/v1/actors/{actor['id']}/").status_code == 200,
        "the replica to show the record",
    )
    assert reader.get(f"/api/v1/actors/{actor['id']}/").body["revision"] == 2


def test_a_write_answers_its_commit_position_and_a_read_served_after_it(cluster):
    writer = HttpClient(cluster["routed"], cluster["token"], carry=True)
    first = new_actor(writer, "position-one").headers[POSITION]
    second = new_actor(writer, "position-two").headers[POSITION]
    assert _lsn(first) < _lsn(second)  # positions grow with every commit
    # A read answers no position; the client keeps the last one it was given.
    assert POSITION not in writer.get("/api/v1/actors/").headers
    assert writer.position == second


def _lsn(position: str) -> int:
    high, low = position.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@pytest.mark.parametrize(
    "position", ["", "nonsense", "16/B374D848/1", "16-B374D848", "123456789/0", "G/0", "/1"]
)
def test_a_malformed_commit_position_is_a_400_problem(cluster, position):
    status, headers, body = call(
        "GET", f"{cluster['routed']}/api/v1/actors/", headers={POSITION: position}
    )
    assert status == 400
    assert headers["Content-Type"] == "application/problem+json"
    assert body["type"] == "urn:event-ledger:problem:validation-error"
    assert [error["header"] for error in body["errors"]] == [POSITION]


def test_a_malformed_commit_position_on_a_write_is_a_400_and_writes_nothing(cluster):
    status, _, body = call(
        "POST",
        f"{cluster['routed']}/api/v1/actors/",
        {"slug": "never-written", "name": "Never", "kind": "group"},
        {"Authorization": f"Token {cluster['token']}", POSITION: "bad"},
    )
    assert status == 400 and body["errors"][0]["header"] == POSITION
    assert call("GET", f"{cluster['routed']}/api/v1/actors/never-written/")[0] == 404


def test_a_position_ahead_of_the_primary_is_served_by_the_primary_at_once(cluster):
    writer = HttpClient(cluster["routed"], cluster["token"])
    with replay_paused(cluster["standby"]):
        actor = new_actor(writer, "ahead").body
        status, _, body = call(
            "GET",
            f"{cluster['routed']}/api/v1/actors/{actor['id']}/",
            headers={POSITION: "FFFFFFFF/FFFFFFFF"},
        )
        # Only the primary has the record: it answered, without waiting for a replica.
        assert (status, body["slug"]) == (200, "ahead")


def test_a_mirror_kept_from_a_replica_never_skips_or_repeats_a_change(cluster):
    """The mirror test of tests/test_changes.py with its reads served by the
    replica and its writes by the primary; replay is paused across some syncs,
    so the replica's feed lags behind writes it will show later."""
    standby = cluster["standby"]
    writer = HttpClient(cluster["routed"], cluster["token"], carry=True)
    reader = HttpClient(cluster["routed"])
    source = writer.post("/api/v1/sources/", {"title": "Talks", "text": MIRROR_SOURCE_TEXT})
    assert source.status_code == 201, source.body

    def before_sync(step):
        # Paused from the first sync on: the second reads a replica 30 writes
        # behind; the third, one replaying them as it reads.
        if step == 29:
            standby.pause_replay()
        elif step == 89:
            standby.resume_replay()
        elif step is None:  # the last sync reads as far as the writer wrote
            reader.carry, reader.position = True, writer.position

    try:
        mirror_from_the_feed(writer, reader, source.body["id"], before_sync)
    finally:
        standby.resume_replay()
    seen = [(c["resource"], c["id"], c["revision"], c["action"]) for c in reader.seen]
    assert len(seen) == len(set(seen)), "a change was shown twice"
    # Everything the primary's feed lists, the replica's walk showed, in order.
    primary = HttpClient(cluster["routed"], carry=True)
    primary.position = "FFFFFFFF/FFFFFFFF"
    everything, _ = read_feed(primary, resource=["actors", "places", "events"])
    assert seen == [(c["resource"], c["id"], c["revision"], c["action"]) for c in everything]


def test_a_lagging_replica_leaves_rotation_and_readyz_reports_it(cluster):
    base = cluster["bounded"]
    writer = HttpClient(base, cluster["token"])
    reader = HttpClient(base)

    def replica_state() -> dict:
        status, _, body = call("GET", f"{base}/readyz")
        assert status == 200, body  # the primary answers: ready, whatever the replica
        return body["replicas"]["replica_1"]

    wait_for(lambda: replica_state()["state"] == "ok", "the replica in rotation")
    with replay_paused(cluster["standby"]):
        actor = new_actor(writer, "lagging").body
        wait_for(lambda: replica_state()["state"] == "lagging", "the replica out of rotation")
        assert replica_state()["lag_ms"] > 500
        # Out of rotation: the primary serves reads, the new record included.
        read = reader.get(f"/api/v1/actors/{actor['id']}/")
        assert (read.status_code, read.body["slug"]) == (200, "lagging")
    wait_for(lambda: replica_state()["state"] == "ok", "the replica back in rotation")
    assert replica_state()["lag_ms"] == 0


def test_a_replica_gone_mid_request_costs_a_retry_on_the_primary(cluster):
    """Last: it stops the standby. The routed service still holds the replica in
    rotation (it checks once in ten minutes), so its next read meets the
    replica gone and runs again on the primary."""
    standby = cluster["standby"]
    reader = HttpClient(cluster["routed"])
    before = reader.get("/api/v1/events/?page_size=3")
    assert before.status_code == 200
    standby.stop("fast")
    try:
        after = reader.get("/api/v1/events/?page_size=3")
        assert (after.status_code, after.body) == (200, before.body)
        assert "replica replica_1 failed" in cluster["log"].read_text()
        # Out of rotation now: reads go to the primary without trying it.
        assert reader.get("/api/v1/actors/").status_code == 200
        status, _, ready = call("GET", f"{cluster['routed']}/readyz")
        assert status == 200
        assert ready["replicas"]["replica_1"]["state"] == "down"
        bounded = HttpClient(cluster["bounded"]).get("/api/v1/events/?page_size=3")
        assert bounded.status_code == 200
        assert [e["id"] for e in bounded.body["results"]] == [
            e["id"] for e in before.body["results"]
        ]
    finally:
        standby.start()
