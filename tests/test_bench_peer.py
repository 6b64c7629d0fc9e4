"""The benchmark's peer (bench/peer.py) answers the event list and detail with
the service's bytes: the benchmark compares the two, so a representation that
changes without the peer must fail here, not only when `make bench` runs.

The peer reads through a connection of its own, so the data is committed
(transaction=True)."""

import datetime
import importlib
import io
import json

import pytest
from django.db import connection, transaction
from psycopg.conninfo import make_conninfo

from events.models import QUAD_CLASS, EventStatus, EventType
from ledger.models import DatePrecision
from tests.factories import EventFactory, EventParticipantFactory, PlaceFactory

pytestmark = pytest.mark.django_db(transaction=True)

D = datetime.date
# (status, start, end, precision): each way the service writes a date.
DATES = [
    (EventStatus.OCCURRED, D(2023, 11, 1), D(2023, 11, 1), DatePrecision.DAY),
    (EventStatus.OCCURRED, D(2023, 11, 1), D(2023, 11, 3), DatePrecision.DAY),
    (EventStatus.OCCURRED, D(2023, 11, 1), D(2023, 11, 30), DatePrecision.MONTH),
    (EventStatus.OCCURRED, D(1991, 1, 1), D(1991, 12, 31), DatePrecision.YEAR),
    (EventStatus.OCCURRED, D(1990, 1, 1), D(1999, 12, 31), DatePrecision.DECADE),
    (EventStatus.OCCURRED, D(2001, 3, 4), D(2003, 5, 6), DatePrecision.UNKNOWN),
    (EventStatus.OCCURRED, None, D(2003, 5, 6), DatePrecision.DAY),
    (EventStatus.OCCURRED, D(2003, 5, 6), None, DatePrecision.DAY),
    (EventStatus.OCCURRED, D(2003, 5, 6), None, DatePrecision.UNKNOWN),
    (EventStatus.ONGOING, D(2020, 2, 1), D(2024, 6, 9), DatePrecision.MONTH),
    (EventStatus.ONGOING, None, D(2024, 6, 9), DatePrecision.DAY),
    (EventStatus.PLANNED, D(2030, 1, 1), D(2030, 12, 31), DatePrecision.YEAR),
]


@pytest.fixture
def peer(monkeypatch):
    connection.ensure_connection()
    params = connection.get_connection_params()
    keys = ("host", "port", "dbname", "user", "password")
    monkeypatch.setenv(
        "PEER_DATABASE", make_conninfo(**{k: v for k, v in params.items() if k in keys and v})
    )
    monkeypatch.setenv("PEER_QUAD", json.dumps({str(t): str(q) for t, q in QUAD_CLASS.items()}))
    from bench import peer as module

    module = importlib.reload(module)  # its statements read PEER_QUAD
    yield module
    if module._connection is not None:
        module._connection.close()


def ask(peer, path: str) -> tuple[str, bytes]:
    answer = {}
    body = b"".join(
        peer.application(
            {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": path.partition("?")[0],
                "QUERY_STRING": path.partition("?")[2],
                "HTTP_HOST": "localhost",
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(),
            },
            lambda status, headers: answer.update(status=status, headers=dict(headers)),
        )
    )
    return answer["status"], body


def make_events() -> None:
    place = PlaceFactory(name='Quote "and" back\\slash', country="ARM")
    for n, (status, start, end, precision) in enumerate(DATES):
        event = EventFactory(
            type=[EventType.CONSULT, EventType.ASSAULT, EventType.DISSOLVE][n % 3],
            title=f"Événement {n}: « talks »\n",
            summary="" if n % 2 else "A summary with\ttabs",
            status=status,
            date_start=start,
            date_end=end,
            date_precision=precision,
            place=place if n % 2 else None,
            place_text="near Yerevan" if n % 2 else "",
        )
        for role in ("initiator", "target")[: n % 3]:
            EventParticipantFactory(event=event, role=role)


def test_the_peer_answers_the_services_bytes(client, peer, settings):
    settings.ALLOWED_HOSTS = ["localhost"]  # both asked with the host the benchmark uses
    with transaction.atomic():  # an event's evidence is checked at the commit
        make_events()
    paths = ["/api/v1/events/?page_size=5"]
    compared = 0
    while paths:
        path = paths.pop()
        service = client.get(path, HTTP_HOST="localhost")
        status, body = ask(peer, path)
        assert (service.status_code, status) == (200, "200 OK"), service.content
        assert body == service.content, path
        compared += 1
        page = json.loads(body)
        if page["next"]:
            paths.append(page["next"].split("localhost", 1)[1])
        for event in page["results"]:
            detail = f"/api/v1/events/{event['id']}/"
            service = client.get(detail, HTTP_HOST="localhost")
            status, body = ask(peer, detail)
            assert body == service.content, detail
            compared += 1
    assert compared == 3 + len(DATES)  # three pages of 5 and every detail


def test_the_peer_refuses_what_it_does_not_serve(peer):
    assert ask(peer, "/api/v1/events/999999/")[0] == "404 Not Found"
    assert ask(peer, "/api/v1/actors/")[0] == "404 Not Found"
    assert ask(peer, "/api/v1/events/?cursor=not-a-cursor")[0] == "400 Bad Request"
