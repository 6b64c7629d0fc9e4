"""A randomized, stateful walk over the HTTP API that checks the history
promises after every step.

Two users create, change (with real changes, with values that change nothing,
with child lists, with fresh, stale and wildcard ETags) and delete actors,
places, events, statements and affiliations. The machine keeps what it expects
of each record, and after every step checks, for the record the step touched:

- every answer is the expected one, and never a 5xx;
- each effective write added exactly one revision, with a non-empty `changes`,
  credited to its user and reason; a write that changes nothing, or is
  refused, added none and altered nothing;
- the history lists exactly the expected revisions (number, action, user,
  reason); `history/n/` and `?as_of=` of every revision show the record as
  the write of that revision answered it;
- the change feed lists the same revisions (number, action, time) and a
  mirror built from the feed equals the records as the API shows them.

The seed is new on each run and printed; replay a failure with
`STATEFUL_SEED=<seed> make test` (or pytest tests/test_stateful.py). The
number of runs and steps: STATEFUL_EXAMPLES (default 12) and STATEFUL_STEPS
(default 30).
"""

import itertools
import os
import random

import pytest
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

pytestmark = pytest.mark.django_db(transaction=True)

SOURCE_TEXT = (
    "Armenia and Azerbaijan met in Brussels. The ministers discussed the border. "
    "Russia criticized the talks. The European Union offered to mediate. "
    "Turkey said nothing. Georgia hosted a later round of the talks."
)
WORDS = ["Armenia", "Azerbaijan", "Russia", "Union", "Turkey", "Georgia", "border", "talks"]
SPANS = [(SOURCE_TEXT.index(w), SOURCE_TEXT.index(w) + len(w)) for w in WORDS]
NAMES = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta"]
REASONS = ["", "coded from the report", "typo", "merge of duplicates"]
ROLES = ["initiator", "target", "mediator", "participant"]
FEED = "/api/v1/changes/"
_unique = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_unique)}"


def normalized(value, top=True):
    """A representation with nested records reduced to their ids: a nested
    record shows the referenced record as it is now (a renamed actor is a
    change of the actor, not of the events it is in)."""
    if isinstance(value, dict):
        if not top and "id" in value and "url" in value:
            return value["id"]
        return {key: normalized(item, top=False) for key, item in value.items()}
    if isinstance(value, list):
        return [normalized(item, top=False) for item in value]
    return value


class Record:
    def __init__(self, resource: str, pk: int, body: dict, user: str, reason: str):
        self.resource, self.pk = resource, pk
        self.url = f"/api/v1/{resource}/{pk}/"
        self.revisions = {1: normalized(body)}  # revision -> representation
        self.history = [(1, "create", user, reason or None)]
        self.deleted = False

    @property
    def revision(self) -> int:
        return self.history[-1][0]

    @property
    def current(self) -> dict:
        return self.revisions[self.revision]


class LedgerMachine(RuleBasedStateMachine):
    """Set `client_for` (user name -> API client) before running."""

    client_for: dict = {}
    anonymous = None
    requests = 0  # writes sent, over all runs

    def __init__(self):
        super().__init__()
        self.records: dict[tuple[str, int], Record] = {}
        self.feed: dict[tuple[str, int], list[dict]] = {}
        self.mirror: dict[tuple[str, int], dict | None] = {}
        self.cursor = self._feed_end()
        self.source = None
        self.touched: tuple[str, int] | None = None

    # Helpers -------------------------------------------------------------------

    def _feed_end(self) -> str:
        body = self.anonymous.get(FEED, {"page_size": 1000}).json()
        while body["next"]:
            body = self.anonymous.get(body["next"]).json()
        return body["cursor"]

    def send(self, user: str, method: str, url: str, body=None, *, if_match=None, reason=""):
        LedgerMachine.requests += 1
        headers = {}
        if if_match is not None:
            headers["HTTP_IF_MATCH"] = if_match
        if reason:
            headers["HTTP_X_CHANGE_REASON"] = reason
        client = self.client_for[user]
        response = getattr(client, method)(url, body, format="json", **headers)
        assert response.status_code < 500, (method, url, body, response.content)
        return response

    def live(self, resource: str | None = None) -> list[Record]:
        return [
            r
            for r in self.records.values()
            if not r.deleted and (resource is None or r.resource == resource)
        ]

    def references(self, record: Record) -> bool:
        """Whether another live record refers to `record` (its delete is then a 409)."""
        for other in self.live():
            state = other.current
            if record.resource == "actors":
                if other.resource == "events" and record.pk in [
                    p["actor"] for p in state["participants"]
                ]:
                    return True
                if other.resource == "statements" and record.pk in [
                    state["speaker"],
                    *state["targets"],
                    *state["about_actors"],
                ]:
                    return True
                if other.resource == "affiliations" and record.pk in (
                    state["member"],
                    state["organization"],
                ):
                    return True
            if (
                record.resource == "events"
                and other.resource == "statements"
                and record.pk in state["about_events"]
            ):
                return True
        return False

    def evidence(self, data) -> list[dict]:
        spans = data.draw(st.lists(st.sampled_from(SPANS), min_size=1, max_size=3, unique=True))
        return [{"source": self.source, "start": s, "end": e} for s, e in spans]

    def actor_ids(self, data, *, min_size=0, max_size=3) -> list[int]:
        ids = [r.pk for r in self.live("actors")]
        if not ids:
            return []
        return data.draw(
            st.lists(st.sampled_from(ids), min_size=min_size, max_size=max_size, unique=True)
        )

    def created(self, resource: str, response, user: str, reason: str) -> None:
        assert response.status_code == 201, response.content
        body = response.json()
        assert response["Location"] == body["url"]
        assert response["ETag"] == '"1"'
        record = Record(resource, body["id"], body, user, reason)
        self.records[(resource, record.pk)] = record
        self.touched = (resource, record.pk)

    # Rules: creating -------------------------------------------------------------

    @initialize()
    def a_source(self):
        response = self.send(
            "alice",
            "post",
            "/api/v1/sources/",
            {"title": unique("report"), "text": f"{SOURCE_TEXT} ({unique('copy')})"},
        )
        assert response.status_code == 201, response.content
        self.source = response.json()["id"]

    @rule(user=st.sampled_from(["alice", "bob"]), reason=st.sampled_from(REASONS), data=st.data())
    def create_actor(self, user, reason, data):
        body = {
            "slug": unique("actor"),
            "name": data.draw(st.sampled_from(NAMES)),
            "kind": data.draw(st.sampled_from(["country", "person", "group"])),
            "aliases": data.draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True)),
        }
        response = self.send(user, "post", "/api/v1/actors/", body, reason=reason)
        self.created("actors", response, user, reason)

    @rule(user=st.sampled_from(["alice", "bob"]), reason=st.sampled_from(REASONS), data=st.data())
    def create_place(self, user, reason, data):
        body = {"slug": unique("place"), "name": data.draw(st.sampled_from(NAMES)), "kind": "city"}
        response = self.send(user, "post", "/api/v1/places/", body, reason=reason)
        self.created("places", response, user, reason)

    @rule(user=st.sampled_from(["alice", "bob"]), reason=st.sampled_from(REASONS), data=st.data())
    def create_event(self, user, reason, data):
        body = {
            "type": data.draw(st.sampled_from(["CONSULT", "ASSAULT", "AGREE"])),
            "title": data.draw(st.sampled_from(NAMES)),
            "date_precision": "unknown",
            "date_end": "2023-11-09",
            "participants": [
                {"actor": pk, "role": data.draw(st.sampled_from(ROLES))}
                for pk in self.actor_ids(data)
            ],
            "evidence": self.evidence(data),
        }
        response = self.send(user, "post", "/api/v1/events/", body, reason=reason)
        self.created("events", response, user, reason)

    @precondition(lambda self: self.live("actors"))
    @rule(user=st.sampled_from(["alice", "bob"]), reason=st.sampled_from(REASONS), data=st.data())
    def create_statement(self, user, reason, data):
        events = [r.pk for r in self.live("events")]
        body = {
            "speaker": self.actor_ids(data, min_size=1, max_size=1)[0],
            "kind": "claim",
            "content": data.draw(st.sampled_from(NAMES)),
            "date_precision": "unknown",
            "date_end": "2023-11-09",
            "targets": self.actor_ids(data),
            "about_actors": self.actor_ids(data),
            "about_events": data.draw(st.lists(st.sampled_from(events), max_size=2, unique=True))
            if events
            else [],
            "evidence": self.evidence(data),
        }
        response = self.send(user, "post", "/api/v1/statements/", body, reason=reason)
        self.created("statements", response, user, reason)

    @precondition(lambda self: len(self.live("actors")) >= 2)
    @rule(user=st.sampled_from(["alice", "bob"]), reason=st.sampled_from(REASONS), data=st.data())
    def create_affiliation(self, user, reason, data):
        member, organization = self.actor_ids(data, min_size=2, max_size=2)
        body = {
            "member": member,
            "organization": organization,
            "role": unique("Minister"),
            "evidence": self.evidence(data),
        }
        response = self.send(user, "post", "/api/v1/affiliations/", body, reason=reason)
        self.created("affiliations", response, user, reason)

    # Rules: changing -------------------------------------------------------------

    def change_for(self, record: Record, data) -> dict:
        """A body that changes the record."""
        state = record.current
        options = {
            "actors": [
                lambda: {"name": unique("name")},
                lambda: {"aliases": sorted({*state["aliases"], unique("alias")})},
                lambda: (
                    {"aliases": state["aliases"][1:]} if state["aliases"] else {"aliases": ["Solo"]}
                ),
                lambda: {"description": unique("about")},
            ],
            "places": [lambda: {"name": unique("name")}],
            "events": [
                lambda: {"title": unique("title")},
                lambda: {"evidence": self._other_evidence(state, data)},
                lambda: (
                    {
                        "participants": [
                            *[
                                {"actor": p["actor"], "role": p["role"]}
                                for p in state["participants"]
                            ],
                            {"actor": a, "role": "mediator"},
                        ]
                    }
                    if (a := self._fresh_actor([p["actor"] for p in state["participants"]]))
                    else {"title": unique("title")}
                ),
            ],
            "statements": [
                lambda: {"content": unique("content")},
                lambda: (
                    {"about_actors": [a]}
                    if (a := self._fresh_actor(state["about_actors"]))
                    else {"content": unique("content")}
                ),
                lambda: (
                    {"about_events": []}
                    if state["about_events"]
                    else {"content": unique("content")}
                ),
                lambda: {"evidence": self._other_evidence(state, data)},
            ],
            "affiliations": [
                lambda: {"role": unique("Minister")},
                lambda: {"evidence": self._other_evidence(state, data)},
            ],
        }[record.resource]
        return data.draw(st.sampled_from(options))()

    def _fresh_actor(self, taken) -> int | None:
        free = [r.pk for r in self.live("actors") if r.pk not in taken]
        return free[0] if free else None

    def _other_evidence(self, state, data) -> list[dict]:
        current = {(e["source"], e["start"], e["end"]) for e in state["evidence"]}
        while True:
            spans = self.evidence(data)
            if {(e["source"], e["start"], e["end"]) for e in spans} != current:
                return spans

    def same_values_for(self, record: Record, data) -> dict:
        """A body of values the record already has: a write that changes nothing."""
        state = record.current
        writable = {
            "actors": ["name", "kind", "description", "aliases"],
            "places": ["name", "kind"],
            "events": ["title", "type", "summary", "participants", "evidence"],
            "statements": [
                "content",
                "kind",
                "targets",
                "about_actors",
                "about_events",
                "evidence",
            ],
            "affiliations": ["role", "member", "organization", "evidence"],
        }[record.resource]
        names = data.draw(st.lists(st.sampled_from(writable), unique=True, max_size=3))
        body = {}
        for name in names:
            value = state[name]
            if name == "evidence":
                value = [
                    {"source": e["source"], "start": e["start"], "end": e["end"]} for e in value
                ]
            elif name == "participants":
                value = [{"actor": p["actor"], "role": p["role"]} for p in value]
            elif name == "aliases":
                value = data.draw(st.permutations(value))
            body[name] = value
        return body

    @precondition(lambda self: self.live())
    @rule(
        user=st.sampled_from(["alice", "bob"]),
        reason=st.sampled_from(REASONS),
        kind=st.sampled_from(["change", "change", "same", "stale"]),
        wildcard=st.booleans(),
        data=st.data(),
    )
    def patch(self, user, reason, kind, wildcard, data):
        record = data.draw(st.sampled_from(self.live()))
        self.touched = (record.resource, record.pk)
        body = (
            self.change_for(record, data) if kind != "same" else self.same_values_for(record, data)
        )
        if kind == "stale":
            if_match = f'"{record.revision - 1 if record.revision > 1 else record.revision + 7}"'
        else:
            if_match = "*" if wildcard else f'"{record.revision}"'
        response = self.send(user, "patch", record.url, body, if_match=if_match, reason=reason)
        if kind == "stale":
            assert response.status_code == 412, response.content
            assert response.json()["current_revision"] == record.revision
            return
        assert response.status_code == 200, (body, response.content)
        answer = normalized(response.json())
        if kind == "same":
            assert response["ETag"] == f'"{record.revision}"'
            assert answer == record.current, "a write that changes nothing changed the record"
            return
        revision = record.revision + 1
        assert response["ETag"] == f'"{revision}"'
        assert answer["revision"] == revision
        record.revisions[revision] = answer
        record.history.append((revision, "update", user, reason or None))

    @precondition(lambda self: self.live())
    @rule(
        user=st.sampled_from(["alice", "bob"]),
        reason=st.sampled_from(REASONS),
        stale=st.booleans(),
        data=st.data(),
    )
    def delete(self, user, reason, stale, data):
        candidates = [r for r in self.live() if r.resource != "sources"]
        record = data.draw(st.sampled_from(candidates))
        self.touched = (record.resource, record.pk)
        if_match = f'"{record.revision + 1}"' if stale else f'"{record.revision}"'
        response = self.send(user, "delete", record.url, if_match=if_match, reason=reason)
        if stale:
            assert response.status_code == 412, response.content
        elif self.references(record):
            assert response.status_code == 409, response.content
            assert response["Content-Type"] == "application/problem+json"
        else:
            assert response.status_code == 204, response.content
            record.deleted = True
            record.history.append((record.revision + 1, "delete", user, reason or None))

    # Checks ------------------------------------------------------------------------

    @invariant()
    def feed_mirror_matches_the_api(self):
        """Read the feed from the last cursor; the mirror it builds equals what
        the machine expects of every record it made."""
        url = f"{FEED}?after={self.cursor}&page_size=50"
        while url:
            body = self.anonymous.get(url).json()
            for change in body["results"]:
                key = (change["resource"], change["id"])
                if key not in self.records:
                    continue  # another run's record
                self.feed.setdefault(key, []).append(change)
                self.mirror[key] = None if change["data"] is None else normalized(change["data"])
            self.cursor = body["cursor"]
            url = body["next"]
        for key, record in self.records.items():
            expected = None if record.deleted else record.current
            assert self.mirror.get(key) == expected, f"mirror of {key} differs"

    @invariant()
    def history_holds_for_the_touched_record(self):
        if self.touched is None:
            return
        record = self.records[self.touched]
        api = self.anonymous
        # Signed in, the history names the writers' accounts.
        entries = list(
            reversed(self.client_for["alice"].get(f"{record.url}history/").json()["results"])
        )
        assert [(e["revision"], e["action"], e["user"], e["reason"]) for e in entries] == (
            record.history
        )
        for entry in entries:
            if entry["action"] != "delete":
                assert entry["changes"], f"revision {entry['revision']} records no change"
        feed = self.feed.get(self.touched, [])
        assert [(c["action"], c["revision"], c["changed_at"]) for c in feed] == [
            (e["action"], e["revision"], e["time"]) for e in entries
        ]
        for entry in entries:
            if entry["action"] == "delete":
                continue
            expected = record.revisions[entry["revision"]]
            at_revision = api.get(f"{record.url}history/{entry['revision']}/")
            assert normalized(at_revision.json()) == expected, f"history/{entry['revision']}/"
            as_of = api.get(record.url, {"as_of": entry["time"]})
            assert normalized(as_of.json()) == expected, f"as_of of revision {entry['revision']}"
        current = api.get(record.url)
        if record.deleted:
            assert current.status_code == 410
        else:
            assert current["ETag"] == f'"{record.revision}"'
            assert normalized(current.json()) == record.current


def users(token_client) -> dict:
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    clients = {}
    for name in ("alice", "bob"):
        user, _ = User.objects.get_or_create(username=name)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label__in=["actors", "events", "sources"])
        )
        token, _ = Token.objects.get_or_create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        clients[name] = client
    return clients


def test_random_walks_keep_every_history_promise(api, token_client, settings_override, capsys):
    run_seed = int(os.environ.get("STATEFUL_SEED") or random.randrange(2**32))
    examples = int(os.environ.get("STATEFUL_EXAMPLES", "12"))
    steps = int(os.environ.get("STATEFUL_STEPS", "30"))
    with capsys.disabled():  # shown in every run, so that a failure in CI can be replayed
        print(
            f"\nstateful test: seed {run_seed}, {examples} runs of up to {steps} steps "
            f"(replay: STATEFUL_SEED={run_seed})"
        )
    LedgerMachine.client_for = users(token_client)
    LedgerMachine.anonymous = api
    machine = seed(run_seed)(LedgerMachine)
    try:
        from hypothesis.stateful import run_state_machine_as_test

        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    except BaseException:
        print(f"\nstateful test failed: replay with STATEFUL_SEED={run_seed}")
        raise
    with capsys.disabled():
        print(f"stateful test: {LedgerMachine.requests} writes checked (seed {run_seed})")


@pytest.fixture
def settings_override(settings):
    """Throttles out of reach: the walk makes many requests."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "1000000/min", "user": "1000000/min"},
    }
