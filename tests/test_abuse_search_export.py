"""Search and export used as weapons: bounded queries, their own statement
timeout and throttle, capped anonymous and concurrent exports, exports that
stop when their client does, and CSV cells that no spreadsheet runs."""

import csv
import io
import json
import os
import socket
import time
import urllib.request

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from events import export, views
from events.export import BoundedExport, stream
from tests.factories import EventFactory, PlaceFactory
from tests.live import call, embedded_admin_connection, live_service, manage

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events/"
STATEMENTS = "/api/v1/statements/"
EXPORT = "/api/v1/events/export"
PROBLEM = "application/problem+json"

# What the probe sent: 277 rare words joined by OR, a 3.6 KB URL.
WORDS = [f"zq{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}rare" for i in range(277)]
WEAPON = " OR ".join(WORDS)


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return body


def the_q_error(body: dict) -> dict:
    assert body["type"] == "urn:event-ledger:problem:validation-error"
    assert [e["parameter"] for e in body["errors"]] == ["q"]
    return body["errors"][0]


# 1. Search ------------------------------------------------------------------


@pytest.mark.parametrize("url", [EVENTS, STATEMENTS, EXPORT])
def test_the_probes_long_or_chain_is_refused_with_400_naming_q_and_the_limit(api, url):
    assert len(WEAPON) > 3000
    error = the_q_error(problem(api.get(url, {"q": WEAPON}), 400))
    assert error["detail"].startswith("A search may be at most 200 characters long")


@pytest.mark.parametrize(
    ("q", "limit"),
    [
        ("one two three four five six seven eight nine", "at most 8 words; this one has 9"),
        # Words in phrases and excluded words count too; a hyphen splits a word.
        ('"one two three" four -five six-seven eight nine', "at most 8 words; this one has 9"),
        ("a OR b OR c OR d OR e OR f", "use OR at most 4 times; this one uses it 5 times"),
        ('"a b" "c d" "e f"', 'at most 2 "quoted phrases"; this one has 3'),
    ],
)
@pytest.mark.parametrize("url", [EVENTS, STATEMENTS])
def test_searches_past_a_bound_are_refused_with_400_naming_q_and_the_limit(api, url, q, limit):
    assert len(q) <= 200
    error = the_q_error(problem(api.get(url, {"q": q}), 400))
    assert limit in error["detail"]


@pytest.mark.parametrize(
    "q",
    [
        "ambassador",
        "one two three four five six seven eight",
        "a OR b OR c OR d OR e",
        '"ethnic cleansing" "border guards" -Armenians',
        '"one phrase"',
        '"an unclosed phrase',  # runs to the end, as PostgreSQL reads it
        "x" * 200,
    ],
)
def test_searches_within_the_bounds_are_answered(api, seeded, q):
    assert api.get(EVENTS, {"q": q}).status_code == 200
    assert api.get(STATEMENTS, {"q": q}).status_code == 200


def slowly(function, seconds: float = 0.3):
    """`function`, after a statement that takes `seconds` on the same connection."""

    def slow(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(%s)", [seconds])
        return function(*args, **kwargs)

    return slow


def assert_search_timeout(response) -> None:
    body = problem(response, 503)
    assert body["type"] == "urn:event-ledger:problem:search-timeout"
    assert "took longer than 50 ms" in body["detail"]
    assert "narrow it" in body["detail"]


def test_a_search_past_its_own_timeout_answers_503_and_a_plain_list_does_not(
    api, seeded, settings, monkeypatch
):
    settings.SEARCH_TIMEOUT_MS = 50
    monkeypatch.setattr(views, "fetch_rows", slowly(views.fetch_rows))
    assert_search_timeout(api.get(EVENTS, {"q": "ambassador"}))
    # The same slow query without `q` runs under the general timeout (15 s).
    assert api.get(EVENTS).status_code == 200
    # The connection is fine afterwards: the search's transaction was rolled back.
    monkeypatch.undo()
    assert api.get(EVENTS, {"q": "ambassador"}).json()["results"]


def test_a_statement_search_past_its_timeout_answers_503(api, seeded, settings, monkeypatch):
    settings.SEARCH_TIMEOUT_MS = 50
    monkeypatch.setattr(
        views.StatementViewSet,
        "paginate_queryset",
        slowly(views.StatementViewSet.paginate_queryset),
    )
    assert_search_timeout(api.get(STATEMENTS, {"q": "guarantor"}))
    assert api.get(STATEMENTS).status_code == 200


def test_an_anonymous_export_search_past_its_timeout_answers_503(
    api, seeded, settings, monkeypatch
):
    settings.SEARCH_TIMEOUT_MS = 50
    monkeypatch.setattr(views, "count_at_most", slowly(views.count_at_most))
    assert_search_timeout(api.get(EXPORT, {"q": "ambassador"}))


def test_a_search_sets_its_statement_timeout(api, seeded, settings):
    settings.SEARCH_TIMEOUT_MS = 1234
    with CaptureQueriesContext(connection) as captured:
        api.get(EVENTS, {"q": "ambassador"})
    assert "SET LOCAL statement_timeout = 1234" in [q["sql"] for q in captured]
    with CaptureQueriesContext(connection) as captured:
        api.get(EVENTS)
    assert not [q for q in captured if "statement_timeout" in q["sql"]]


def test_a_search_inside_a_transaction_leaves_it_its_own_timeout(api, seeded, settings):
    # Tests run in a transaction, as a request would with ATOMIC_REQUESTS: the
    # search's SET LOCAL must not outlive the search.
    settings.SEARCH_TIMEOUT_MS = 1234
    assert api.get(EVENTS, {"q": "ambassador"}).status_code == 200
    assert api.get(STATEMENTS, {"q": "guarantor"}).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "15s"


def test_searches_have_their_own_throttle_and_other_requests_still_pass(
    api, seeded, settings, token_client
):
    settings.THROTTLE_SEARCH = "2/min"
    assert api.get(EVENTS, {"q": "ambassador"}).status_code == 200
    assert api.get(STATEMENTS, {"q": "guarantor"}).status_code == 200
    for url in (EVENTS, STATEMENTS, EXPORT):
        response = api.get(url, {"q": "ambassador"})
        body = problem(response, 429)
        assert body["type"] == "urn:event-ledger:problem:throttled"
        assert 0 < int(response["Retry-After"]) <= 60
    # Requests without a search, and an empty `q`, are not counted against it.
    assert api.get(EVENTS).status_code == 200
    assert api.get(EVENTS, {"q": ""}).status_code == 200
    assert api.get(STATEMENTS).status_code == 200
    assert len(read_csv(api.get(EXPORT))) == 14
    # A signed-in user has a search budget of their own (THROTTLE_SEARCH_USER).
    settings.THROTTLE_SEARCH_USER = "3/min"
    user = token_client()
    statuses = [user.get(EVENTS, {"q": "ambassador"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


# 2. Export ------------------------------------------------------------------


def client_gone(response) -> None:
    """What the server does when a client leaves: close the response, here
    without Django's end-of-request signal, which would close the test's
    database connection."""
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def read_csv(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_an_anonymous_export_over_the_cap_is_refused_with_403(api, seeded, settings):
    settings.EXPORT_ANON_MAX_ROWS = 5
    body = problem(api.get(EXPORT, {"format": "csv"}), 403)
    assert body["type"] == "urn:event-ledger:problem:export-too-large"
    assert "at most 5 events" in body["detail"]
    assert "Sign in" in body["detail"] and "narrow" in body["detail"]
    # A search that matches more is refused too; one that matches fewer is served.
    assert api.get(EXPORT, {"q": "Russia"}).status_code == 403
    rows = read_csv(api.get(EXPORT, {"q": "ambassador"}))
    assert [r["title"] for r in rows] == ["Russia summons the Armenian ambassador"]


def test_signed_in_users_export_without_a_cap(api, seeded, settings, token_client):
    settings.EXPORT_ANON_MAX_ROWS = 5
    assert len(read_csv(token_client().get(EXPORT, {"format": "csv"}))) == 14


def test_anonymous_exports_can_be_switched_off(api, seeded, settings):
    settings.EXPORT_ANON_MAX_ROWS = 0
    body = problem(api.get(EXPORT, {"q": "ambassador"}), 403)
    assert body["detail"].startswith("Sign in to export")


def test_the_anonymous_count_stops_at_the_cap(api, settings):
    settings.EXPORT_ANON_MAX_ROWS = 3
    EventFactory.create_batch(5)
    with CaptureQueriesContext(connection) as captured:
        assert api.get(EXPORT).status_code == 403
    (count,) = [q["sql"] for q in captured if q["sql"].startswith("SELECT count(*)")]
    assert "LIMIT 4" in count  # no further than one past the cap


def test_concurrent_exports_are_capped_per_anonymous_client_with_429(api, seeded):
    first = api.get(EXPORT)  # streaming, not yet read: its slots are held
    assert first.status_code == 200
    response = api.get(EXPORT, {"format": "jsonl"})
    body = problem(response, 429)
    assert body["type"] == "urn:event-ledger:problem:throttled"
    assert "already has 1 export(s) running" in body["detail"]
    assert int(response["Retry-After"]) == views.EXPORT_RETRY_AFTER
    assert len(read_csv(first)) == 14  # read to the end: the response closes
    assert len(read_csv(api.get(EXPORT))) == 14


def test_concurrent_exports_are_capped_per_user_and_in_all(seeded, settings, token_client):
    settings.EXPORT_MAX_CONCURRENT = 3
    alice, bob = token_client(), token_client()
    held = [alice.get(EXPORT), alice.get(EXPORT)]
    assert "already has 2 export(s)" in problem(alice.get(EXPORT), 429)["detail"]
    held.append(bob.get(EXPORT))
    assert "3 exports are running" in problem(bob.get(EXPORT), 429)["detail"]
    client_gone(held.pop())  # a client that goes away frees its slots too
    assert bob.get(EXPORT).status_code == 200


def test_a_slot_left_by_a_dead_worker_expires(api, seeded, settings, monkeypatch):
    # The lifetime of a slot: EXPORT_TIMEOUT_MS + EXPORT_STALL_TIMEOUT_MS + a grace.
    settings.EXPORT_TIMEOUT_MS, settings.EXPORT_STALL_TIMEOUT_MS = 100, 100
    monkeypatch.setattr(export, "SLOT_GRACE_SECONDS", 0)
    assert api.get(EXPORT).status_code == 200  # never read, never closed
    assert api.get(EXPORT).status_code == 429
    time.sleep(0.3)
    assert api.get(EXPORT).status_code == 200


def test_exports_are_served_when_the_cache_is_away(api, seeded, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(export.cache, "add", broken)
    held = api.get(EXPORT)
    assert api.get(EXPORT).status_code == 200
    client_gone(held)


@pytest.mark.django_db(transaction=True)
def test_closing_an_export_stops_its_query_in_the_database():
    # A COPY of about 10 GB: read one block, then close, as the server does
    # when the client has gone.
    huge = "COPY (SELECT repeat('x', 1000) FROM generate_series(1, 10000000)) TO STDOUT"
    started = time.monotonic()
    chunks = stream(huge)
    assert len(next(chunks)) >= 1 << 16
    chunks.close()
    assert time.monotonic() - started < 10
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")  # the connection is usable: the COPY is over
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND query LIKE 'COPY (SELECT repeat%%'"
        )
        assert cursor.fetchone()[0] == 0


class FakeSocket:
    def __init__(self):
        self.timeouts = [None]

    def gettimeout(self):
        return self.timeouts[-1]

    def settimeout(self, value):
        self.timeouts.append(value)


def test_a_bounded_export_gives_the_client_socket_a_send_timeout_and_restores_it(settings):
    settings.EXPORT_STALL_TIMEOUT_MS = 2500
    released, sock = [], FakeSocket()
    bounded = BoundedExport(
        iter([b"a", b"b"]), client_socket=sock, on_close=lambda: released.append(1)
    )
    assert list(bounded) == [b"a", b"b"]
    bounded.close()
    bounded.close()
    assert sock.timeouts == [None, 2.5, None]
    assert released == [1]


def test_a_bounded_export_stops_past_its_deadline_with_an_error(settings):
    settings.EXPORT_TIMEOUT_MS = 50

    def slow_chunks():
        while True:
            time.sleep(0.02)
            yield b"x"

    bounded = BoundedExport(slow_chunks())
    with pytest.raises(export.ExportTimedOut):
        for _ in bounded:
            pass
    bounded.close()


# 3. CSV formula injection ---------------------------------------------------


def test_csv_cells_that_a_spreadsheet_would_run_begin_with_a_quote(api):
    place = PlaceFactory(name="@SUM(1+1)*cmd|' /C calc'!A0")
    event = EventFactory(
        title='=HYPERLINK("http://x")',
        place_text="+1",
        summary="-2+3",
        place=place,
    )
    tabbed = EventFactory(title="\t=1+1", summary="\r=1+1", place_text="a-1 = b")
    rows = {int(r["id"]): r for r in read_csv(api.get(EXPORT, {"format": "csv"}))}
    row = rows[event.pk]
    assert row["title"] == '\'=HYPERLINK("http://x")'
    assert row["place_text"] == "'+1"
    assert row["summary"] == "'-2+3"
    assert row["place_name"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert rows[tabbed.pk]["title"] == "'\t=1+1"
    assert rows[tabbed.pk]["summary"] == "'\r=1+1"
    # Only a first character is a formula's: the rest of a cell is left as it is.
    assert rows[tabbed.pk]["place_text"] == "a-1 = b"
    # Numbers and dates are not text cells: left as PostgreSQL writes them.
    assert row["id"] == str(event.pk) and row["revision"] == "1"
    assert row["place_id"] == str(place.pk)
    assert row["date_start"] == "2023-11-01"
    # JSON cells begin with a bracket, and JSON Lines is left as it is.
    assert json.loads(row["evidence"])[0]["source"] == event.evidence.get().source_id
    lines = [
        json.loads(line)
        for line in b"".join(api.get(EXPORT, {"format": "jsonl"}).streaming_content).splitlines()
    ]
    jsonl = {r["id"]: r for r in lines}
    assert jsonl[event.pk]["title"] == '=HYPERLINK("http://x")'
    assert jsonl[event.pk]["place_text"] == "+1"
    assert jsonl[tabbed.pk]["summary"] == "\r=1+1"


# Under gunicorn --------------------------------------------------------------


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def open_without_reading(url: str, token: str | None = None) -> socket.socket:
    """An HTTP request whose answer is never read."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
    sock.connect((host, int(port)))
    auth = f"Authorization: Token {token}\r\n" if token else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode())
    return sock


def healthz_seconds(base: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"{base}/healthz", timeout=30) as response:
        assert response.status == 200
    return time.monotonic() - started


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("DATABASE_URL" in os.environ, reason="runs on the embedded server")
@pytest.mark.skipif(not redis_answers(), reason="no Redis on 127.0.0.1:6379 to share slots")
def test_exports_that_are_never_read_hold_no_worker_for_long_under_gunicorn(tmp_path):
    with live_service(
        tmp_path,
        workers=3,
        CACHE_URL="redis://127.0.0.1:6379/14",
        EXPORT_STALL_TIMEOUT_MS="2000",
        EXPORT_MAX_CONCURRENT="2",
    ) as service:
        subprocess_env = {**service.env, "DATABASE_STATEMENT_TIMEOUT_MS": "0"}
        # Enough events that an export outgrows the sockets' buffers (about 13 MB).
        manage("generate_synthetic", "--events", "20000", env=subprocess_env)
        url = f"{service.url}/api/v1/events/export?format=csv"
        silent = [open_without_reading(url, service.token) for _ in range(2)]
        time.sleep(1)
        # Two exports run (the most at once); a third waits, and the service answers.
        status, headers, body = call(
            "GET", url, headers={"Authorization": f"Token {service.token}"}
        )
        assert status == 429, body
        assert int(headers["Retry-After"]) > 0
        assert healthz_seconds(service.url) < 1
        # An anonymous client may not export 20,014 events.
        assert call("GET", url)[0] == 403
        # Past the stall timeout, the silent exports are dropped: their queries
        # stopped, their slots freed.
        time.sleep(4)
        with embedded_admin_connection() as admin:
            running = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'COPY%%'"
                " AND state <> 'idle'",
                [service.env["EMBEDDED_DB_NAME"]],
            ).fetchone()[0]
        assert running == 0
        empty = f"{url}&date_after=2100-01-01"
        auth = {"Authorization": f"Token {service.token}"}
        assert call("GET", empty, headers=auth)[0] == 200
        for sock in silent:
            sock.close()
