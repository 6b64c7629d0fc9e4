"""The audit trail: reasons kept exactly, request ids the server assigned, what
the public sees of the writers, and histories read a page at a time."""

import base64
import json
import re
import urllib.parse

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

ACTORS = "/api/v1/actors/"


def as_wsgi(text: str) -> str:
    """A header value as a WSGI server hands it over: the UTF-8 bytes the
    client sent, decoded as ISO-8859-1 (PEP 3333)."""
    return text.encode("utf-8").decode("latin-1")


@pytest.fixture
def writer(token_client):
    return token_client("add_actor", "change_actor", "delete_actor")


@pytest.fixture
def actor(writer):
    response = writer.post(ACTORS, {"slug": "am", "name": "Armenia", "kind": "country"}, "json")
    assert response.status_code == 201
    return response.json()


@pytest.mark.parametrize(
    "reason",
    [
        "café au lait",
        "Հայաստանի Հանրապետություն",  # Armenian
        "Российская Федерация — уточнение",  # Russian
    ],
)
def test_a_utf8_change_reason_is_kept_exactly(writer, actor, reason):
    response = writer.patch(
        actor["url"], {"name": "Armenia (state)"}, "json", HTTP_X_CHANGE_REASON=as_wsgi(reason)
    )
    assert response.status_code == 200, response.json()
    entries = writer.get(f"{actor['url']}history/").json()["results"]
    assert entries[0]["reason"] == reason


def test_an_rfc8187_change_reason_is_decoded(writer, actor):
    reason = "Հայաստան: café"
    header = "UTF-8''" + urllib.parse.quote(reason)
    response = writer.patch(actor["url"], {"name": "A"}, "json", HTTP_X_CHANGE_REASON=header)
    assert response.status_code == 200
    assert writer.get(f"{actor['url']}history/").json()["results"][0]["reason"] == reason


def test_a_change_reason_that_is_not_utf8_is_refused_and_changes_nothing(writer, actor):
    response = writer.patch(
        actor["url"],
        {"name": "B"},
        "json",
        HTTP_X_CHANGE_REASON="caf\xe9",  # Latin-1 bytes
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["header"] == "X-Change-Reason"
    assert writer.get(actor["url"]).json()["revision"] == 1


def test_the_server_assigns_the_request_id_and_keeps_the_clients_only_as_such(writer, actor):
    response = writer.patch(actor["url"], {"name": "C"}, "json", HTTP_X_REQUEST_ID="forged-id")
    server_id = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", server_id)
    entry = writer.get(f"{actor['url']}history/").json()["results"][0]
    assert (entry["request_id"], entry["client_request_id"]) == (server_id, "forged-id")


def test_the_public_sees_a_stable_pseudonym_not_the_account(api, writer, actor, token_client):
    writer.patch(actor["url"], {"name": "D"}, "json", HTTP_IF_MATCH='"1"')
    other = token_client("change_actor")
    other.patch(actor["url"], {"name": "E"}, "json")
    public = api.get(f"{actor['url']}history/").json()["results"]
    signed_in = writer.get(f"{actor['url']}history/").json()["results"]
    names = [entry["user"] for entry in signed_in]
    pseudonyms = [entry["user"] for entry in public]
    assert all(re.fullmatch(r"writer-[0-9a-f]{8}", p) for p in pseudonyms)
    assert pseudonyms[1] == pseudonyms[2] != pseudonyms[0]  # same writer, same pseudonym
    assert names[1] == names[2] != names[0]
    assert not set(names) & set(pseudonyms)
    assert all(e["auth"] is None and e["request_id"] is None for e in public)
    assert all(e["client_request_id"] is None for e in public)
    assert [e["reason"] for e in public] == [e["reason"] for e in signed_in]
    assert all(name not in json.dumps(public) for name in names)


class TestHistoryPages:
    @pytest.fixture
    def long_history(self, writer, actor):
        for n in range(2, 8):
            response = writer.patch(actor["url"], {"name": f"Name {n}"}, "json")
            assert response.json()["revision"] == n
        return actor

    def test_the_history_is_read_a_page_at_a_time_newest_first(self, api, long_history):
        url = f"{long_history['url']}history/?page_size=3"
        pages = []
        while url:
            body = api.get(url).json()
            pages.append([e["revision"] for e in body["results"]])
            url = body["next"]
        assert pages == [[7, 6, 5], [4, 3, 2], [1]]

    def test_a_page_shows_the_changes_against_the_revision_before_it(self, api, long_history):
        first = api.get(f"{long_history['url']}history/?page_size=3").json()
        second = api.get(first["next"]).json()
        assert second["results"][0]["changes"]["name"] == {"before": "Name 3", "after": "Name 4"}
        assert second["results"][-1]["changes"]["name"] == {"before": "Armenia", "after": "Name 2"}
        whole = api.get(f"{long_history['url']}history/?page_size=500").json()["results"]
        assert first["results"] + second["results"] == whole[:6]

    @pytest.mark.parametrize(
        ("params", "parameter"),
        [
            ({"page_size": "0"}, "page_size"),
            ({"page_size": "501"}, "page_size"),
            ({"cursor": "bm90IGpzb24"}, "cursor"),
            ({"cursor": base64.urlsafe_b64encode(b'{"r": 1e400}').decode()}, "cursor"),
            ({"cursor": base64.urlsafe_b64encode(b'{"r": true}').decode()}, "cursor"),
            ({"cursor": base64.urlsafe_b64encode(b"[1]").decode()}, "cursor"),
            ({"pagesize": "3"}, "pagesize"),
        ],
    )
    def test_bad_history_parameters_are_refused(self, api, actor, params, parameter):
        response = api.get(f"{actor['url']}history/", params)
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["errors"][0]["parameter"] == parameter
