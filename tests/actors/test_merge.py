"""Merging duplicate actors and places: what moves, the redirect, history and
the feed, undoing it, and what is refused."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from actors.models import Actor, ActorAlias, ActorIdentifier, Affiliation
from actors.services import actor_create
from events.models import Event, EventParticipant, Place, Statement, StatementActor
from events.services import event_create, place_create, statement_create
from ledger.models import Change
from sources.models import Source
from sources.services import span_for_quote

pytestmark = pytest.mark.django_db(transaction=True)  # a revision per request, as in use

ACTORS = "/api/v1/actors/"
PLACES = "/api/v1/places/"


def revision(client, url) -> str:
    return client.get(url)["ETag"]


@pytest.fixture
def duplicate(seeded):
    """`usa`, a second United States: in one event beside the seed's
    united-states in the same role (a participation the target has the like
    of), in another alone, the speaker of a statement and its alias "America"."""
    source = Source.objects.get()
    united_states = Actor.objects.get(slug="united-states")
    usa = actor_create(
        slug="usa",
        name="USA",
        kind="country",
        country="USA",
        aliases=["America", "U.S."],  # U.S. the target has already
        identifiers={"cameo": "USA"},
    )
    talks = Event.objects.filter(participants__actor=united_states, participants__role="mediator")
    shared = talks.first()
    EventParticipant.objects.create(event=shared, actor=usa, role="mediator")
    span = span_for_quote(source=source, quote="Armenia is facing")
    alone = event_create(
        type="CONSULT",
        title="USA alone",
        participants=[(usa, "initiator")],
        evidence=[span],
        date_end=source.published_on,
        date_precision="unknown",
    )
    said = statement_create(
        speaker=usa,
        kind="claim",
        content="Said by USA.",
        evidence=[span],
        date_end=source.published_on,
        date_precision="unknown",
        targets=[Actor.objects.get(slug="armenia")],
    )
    return {"usa": usa, "into": united_states, "shared": shared, "alone": alone, "said": said}


def merge(client, record, into, *, if_match=None, into_revision=None, reason="the same state"):
    """POST {record}/merge/ with `into` an actor, an id or a slug, at the
    current revisions unless told otherwise."""
    url = f"{ACTORS}{record.pk}/"
    if into_revision is None:
        target = into if isinstance(into, Actor) else Actor.objects.filter(slug=into).first()
        into_revision = target.revision if target else 1
    body = {
        "into": into.pk if isinstance(into, Actor) else into,
        "into_revision": into_revision,
        "reason": reason,
    }
    return client.post(
        f"{url}merge/", body, format="json", HTTP_IF_MATCH=if_match or revision(client, url)
    )


def test_a_merge_moves_everything_to_the_target_and_redirects(duplicate, token_client, api):
    client = token_client("change_actor", if_match=None)
    usa, into = duplicate["usa"], duplicate["into"]
    before = {
        "events": Event.objects.filter(participants__actor=into).distinct().count(),
        "participations": EventParticipant.objects.count(),
    }
    response = merge(client, usa, "united-states")  # by slug
    assert response.status_code == 200, response.json()
    report = response.json()
    assert report["into"].endswith(f"{ACTORS}{into.pk}/")
    assert report["moved"] == {
        "participations": 1,
        "statements": 1,
        "aliases": 1,
        "identifiers": 1,
    }
    assert report["dropped"] == {"participations": 1, "aliases": 1}
    # Moved: the participation, the statement, the alias and the identifier.
    assert list(duplicate["alone"].participants.values_list("actor", flat=True)) == [into.pk]
    assert Statement.objects.get(pk=duplicate["said"].pk).speaker_id == into.pk
    assert set(into.aliases.values_list("name", flat=True)) >= {"America", "USA", "U.S."}
    assert into.identifiers.get(scheme="cameo").value == "USA"
    # Dropped: the shared event keeps one mediator, the target.
    mediators = list(
        duplicate["shared"].participants.filter(role="mediator").values_list("actor", flat=True)
    )
    assert mediators.count(into.pk) == 1 and usa.pk not in mediators
    assert EventParticipant.objects.count() == before["participations"] - 1
    assert Event.objects.filter(participants__actor=into).distinct().count() == (
        before["events"] + 1
    )
    # The merged actor: its id, its redirect, out of the list, its filters.
    detail = api.get(f"{ACTORS}{usa.pk}/")
    assert detail.status_code == 308
    assert detail["Location"] == f"http://testserver{ACTORS}{into.pk}/"
    assert api.get(f"{ACTORS}{usa.pk}/", follow=True).json()["id"] == into.pk
    listed = {a["id"] for a in api.get(ACTORS, {"page_size": 100}).json()["results"]}
    assert usa.pk not in listed and into.pk in listed
    by_old = api.get("/api/v1/events/", {"actor": usa.pk, "page_size": 100}).json()
    by_slug = api.get("/api/v1/events/", {"actor": "usa", "page_size": 100}).json()
    by_target = api.get("/api/v1/events/", {"actor": into.pk, "page_size": 100}).json()
    assert by_old["results"] == by_slug["results"] == by_target["results"] != []
    # A write to the merged actor names the target; a reference to it means the target.
    patched = client.patch(f"{ACTORS}{usa.pk}/", {"name": "x"}, format="json", HTTP_IF_MATCH="*")
    assert patched.status_code == 409 and str(into.pk) in patched.json()["detail"]


def test_history_and_feed_show_the_merge_on_both_records(duplicate, token_client, api):
    client = token_client("change_actor", if_match=None)
    usa, into = duplicate["usa"], duplicate["into"]
    last = Change.objects.order_by("pk").last().pk
    assert merge(client, usa, into, reason="USA is the United States").status_code == 200
    for record in (usa, into):  # the newest revision of each is the merge
        newest = api.get(f"{ACTORS}{record.pk}/history/").json()["results"][0]
        assert newest["reason"] == "USA is the United States", newest
        assert newest["merge"] == {"merged": usa.pk, "into": into.pk, "undone": False}
        assert newest["revision"] == record.revision + 1
    changes = set(Change.objects.filter(pk__gt=last).values_list("resource", "object_id", "action"))
    assert ("actors", usa.pk, "merge") in changes
    assert ("actors", into.pk, "update") in changes
    assert ("events", duplicate["alone"].pk, "update") in changes
    assert ("events", duplicate["shared"].pk, "update") in changes
    assert ("statements", duplicate["said"].pk, "update") in changes
    # The moved participation's own history: an update snapshot, in the merge's context.
    moved = duplicate["alone"].participants.get()
    snapshot = moved.snapshots.get(pgh_label="update")
    assert (snapshot.actor_id, snapshot.role) == (into.pk, "initiator")
    assert snapshot.pgh_context.metadata["reason"] == "USA is the United States"
    alias = ActorAlias.objects.get(actor=into, name="America")
    assert alias.snapshots.get(pgh_label="update").actor_id == into.pk
    feed = api.get("/api/v1/changes/", {"resource": "actors", "page_size": 1000}).json()
    [entry] = [c for c in feed["results"] if c["action"] == "merge"]
    assert entry["data"]["merged_into"] == into.pk


def test_each_touched_event_gains_one_revision_snapshot_and_feed_entry_in_the_merge_context(
    seeded, token_client
):
    """The merge writes the events' revisions itself, set-based, with their
    row triggers ignored (ledger.merging._touch): still, each event a moved
    or dropped participation belongs to gains exactly one revision, one
    `update` snapshot carrying the merge's reason and user, and one feed
    entry at that revision, numbered at the commit with the merge's others."""
    from django.contrib.auth.models import User

    source = Source.objects.get()
    span = span_for_quote(source=source, quote="Armenia is facing")
    into = Actor.objects.get(slug="united-states")
    dup = actor_create(slug="dup", name="Dup", kind="country")

    def event(*participants):
        return event_create(
            type="CONSULT",
            title="Merged participations",
            participants=list(participants),
            evidence=[span],
            date_end=source.published_on,
            date_precision="unknown",
        )

    alone = [event((dup, "initiator")) for _ in range(4)]  # moved
    twice = event((dup, "initiator"), (dup, "target"))  # two moved, one event
    # The initiator dropped (the target has the like), the mediator moved.
    both = event((dup, "initiator"), (into, "initiator"), (dup, "mediator"))
    events = [*alone, twice, both]
    before = {e.pk: Event.objects.get(pk=e.pk).revision for e in events}
    snapshots = {e.pk: e.snapshots.count() for e in events}
    last = Change.objects.order_by("pk").last().pk

    client = token_client("change_actor", if_match=None)
    response = merge(client, dup, into, reason="one state, two entries")
    assert response.status_code == 200, response.json()
    assert response.json()["moved"]["participations"] == 7
    user = User.objects.order_by("pk").last()
    assert EventParticipant.objects.filter(actor=dup).count() == 0

    changes = Change.objects.filter(pk__gt=last)
    for e in events:
        assert Event.objects.get(pk=e.pk).revision == before[e.pk] + 1
        [snapshot] = e.snapshots.order_by("pgh_id")[snapshots[e.pk] :]
        assert (snapshot.pgh_label, snapshot.revision) == ("update", before[e.pk] + 1)
        metadata = snapshot.pgh_context.metadata
        assert (metadata["reason"], metadata["user"]) == ("one state, two entries", user.pk)
        [entry] = changes.filter(resource="events", object_id=e.pk)
        assert (entry.action, entry.revision) == ("update", before[e.pk] + 1)
    # One transaction, one place in the feed, given at its commit.
    assert changes.values("txid").distinct().count() == 1
    assert list(changes.values_list("commit_seq", flat=True).distinct()) != [None]
    assert changes.values("commit_seq").distinct().count() == 1


def test_an_unmerge_moves_back_exactly_what_the_merge_moved(duplicate, token_client, api):
    client = token_client("change_actor", if_match=None)
    usa, into = duplicate["usa"], duplicate["into"]

    def state():
        return {
            "participants": sorted(EventParticipant.objects.values_list("event", "actor", "role")),
            "speakers": sorted(Statement.objects.values_list("pk", "speaker")),
            "links": sorted(StatementActor.objects.values_list("statement", "actor", "role")),
            "affiliations": sorted(Affiliation.objects.values_list("pk", "member", "organization")),
            "aliases": sorted(ActorAlias.objects.values_list("actor", "name")),
            "identifiers": sorted(ActorIdentifier.objects.values_list("actor", "scheme", "value")),
        }

    before = state()
    assert merge(client, usa, into).status_code == 200
    assert state() != before
    url = f"{ACTORS}{usa.pk}/"
    response = client.post(
        f"{url}unmerge/",
        {"reason": "two entries after all"},
        format="json",
        HTTP_IF_MATCH=revision(client, f"{url}?as_of=2999-01-01T00:00:00Z"),
    )
    assert response.status_code == 200, response.json()
    assert state() == before
    assert api.get(url).status_code == 200 and api.get(url).json()["merged_into"] is None
    again = client.post(f"{url}unmerge/", {"reason": "again"}, format="json", HTTP_IF_MATCH="*")
    assert again.status_code == 409


def test_what_a_merge_refuses(duplicate, token_client, api):
    client = token_client("change_actor", if_match=None)
    usa, into = duplicate["usa"], duplicate["into"]
    armenia = Actor.objects.get(slug="armenia")
    assert merge(client, usa, usa).status_code == 409  # itself
    wrong = merge(client, usa, into, if_match='"7"')
    assert wrong.status_code == 412  # the merged one changed since
    stale = merge(client, usa, into, into_revision=99)
    assert stale.status_code == 412 and stale.json()["current_revision"] != 99
    gone = merge(client, usa, 10**9, into_revision=1)
    assert gone.status_code == 400 and gone.json()["errors"][0]["pointer"] == "/into"
    no_reason = merge(client, usa, into, reason="")
    assert no_reason.status_code == 400
    assert client.post(f"{ACTORS}{usa.pk}/merge/", {}, format="json").status_code == 428
    assert (
        token_client("add_actor").post(f"{ACTORS}{usa.pk}/merge/", {}, format="json").status_code
        == 403
    )
    # Different values of one identifier scheme: two actors, not one.
    conflict = merge(client, armenia, into)
    detail = conflict.json()["detail"]
    assert conflict.status_code == 409 and "armenia" in detail and "united-states" in detail
    # Into a merged one, or a merged one again.
    assert merge(client, usa, into).status_code == 200
    other = actor_create(slug="usa-2", name="USA 2", kind="country")
    into_merged = merge(client, other, usa, into_revision=1)
    assert into_merged.status_code == 409 and "merged into" in into_merged.json()["detail"]
    twice = client.post(
        f"{ACTORS}{usa.pk}/merge/",
        {"into": other.pk, "into_revision": 1, "reason": "x"},
        format="json",
        HTTP_IF_MATCH="*",
    )
    assert twice.status_code == 409
    assert not Actor.objects.filter(merged_into__merged_into__isnull=False).exists()


def test_crosswise_merges_at_the_same_moment_make_no_cycle(seeded, token_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "user": "100000/min"},
    }
    token = token_client("change_actor")._credentials["HTTP_AUTHORIZATION"]
    for attempt in range(5):
        a = actor_create(slug=f"cross-a-{attempt}", name=f"Cross A {attempt}", kind="group")
        b = actor_create(slug=f"cross-b-{attempt}", name=f"Cross B {attempt}", kind="group")
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def worker(record, into, barrier=barrier, statuses=statuses):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=token)
            try:
                barrier.wait(timeout=30)
                statuses.append(
                    client.post(
                        f"{ACTORS}{record.pk}/merge/",
                        {"into": into.pk, "into_revision": 1, "reason": "crosswise"},
                        format="json",
                        HTTP_IF_MATCH="*",
                    ).status_code
                )
            finally:
                connection.close()

        threads = [
            threading.Thread(target=worker, args=(a, b)),
            threading.Thread(target=worker, args=(b, a)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(statuses) == [200, 409], statuses
        merged = Actor.objects.filter(pk__in=[a.pk, b.pk], merged_into__isnull=False)
        assert merged.count() == 1
        assert merged.get().merged_into.merged_into_id is None


def test_places_merge_with_their_events(seeded, token_client, api):
    client = token_client("change_place", if_match=None)
    into = Place.objects.exclude(events=None).first()
    dup = place_create(slug="dup-place", name=into.name + " (dup)", kind=into.kind)
    event = Event.objects.filter(place=into).first()
    Event.objects.filter(pk=event.pk).update(place=dup)
    url = f"{PLACES}{dup.pk}/"
    response = client.post(
        f"{url}merge/",
        {"into": into.slug, "into_revision": into.revision, "reason": "same city"},
        format="json",
        HTTP_IF_MATCH=revision(client, url),
    )
    assert response.status_code == 200, response.json()
    assert response.json()["moved"] == {"events": 1}
    assert Event.objects.get(pk=event.pk).place_id == into.pk
    assert api.get(url).status_code == 308
    geonamed = place_create(slug="geo-a", name="Geo A", kind="city", geonames_id=1)
    other = place_create(slug="geo-b", name="Geo B", kind="city", geonames_id=2)
    refused = client.post(
        f"{PLACES}{geonamed.pk}/merge/",
        {"into": other.pk, "into_revision": 1, "reason": "x"},
        format="json",
        HTTP_IF_MATCH="*",
    )
    assert refused.status_code == 409 and "GeoNames" in refused.json()["detail"]


# Property: a merge followed by its unmerge changes nothing ----------------------


class _Undo(Exception):
    """Leaves the savepoint of one example, so the next starts from the same data."""


def _state() -> dict:
    """Every row that refers to an actor, by its values (restored rows get new ids)."""
    return {
        "participants": sorted(EventParticipant.objects.values_list("event", "actor", "role")),
        "speakers": sorted(Statement.objects.values_list("pk", "speaker")),
        "links": sorted(StatementActor.objects.values_list("statement", "actor", "role")),
        "affiliations": sorted(Affiliation.objects.values_list("pk", "member", "organization")),
        "aliases": sorted(ActorAlias.objects.values_list("actor", "name")),
        "identifiers": sorted(ActorIdentifier.objects.values_list("actor", "scheme", "value")),
        "merged": sorted(Actor.objects.values_list("pk", "merged_into")),
    }


def test_merge_then_unmerge_is_the_identity(seeded, capsys):
    """Random participations, statement links and aliases among five actors;
    any pair merged: nothing refers to the merged actor, every row it had is
    the target's or counted as dropped; unmerged: every row as it was. A fresh
    seed each run, printed: MERGE_FUZZ_SEED=<n> replays a failure."""
    import os
    import random

    from django.db import transaction
    from hypothesis import given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from actors.services import actor_merge, actor_unmerge
    from ledger.merging import lock_pair

    run_seed = int(os.environ.get("MERGE_FUZZ_SEED") or random.randrange(2**32))
    with capsys.disabled():
        print(f"\nmerge fuzzing: seed {run_seed} (replay: MERGE_FUZZ_SEED={run_seed})")
    source = Source.objects.get()
    span = span_for_quote(source=source, quote="Armenia is facing")
    roles = ["initiator", "target", "mediator"]

    @hypothesis_seed(run_seed)
    @settings(max_examples=40, deadline=None, database=None)
    @given(
        events=st.lists(
            st.lists(st.tuples(st.integers(0, 4), st.sampled_from(roles)), max_size=4),
            max_size=5,
        ),
        links=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=4),
        aliases=st.lists(st.tuples(st.integers(0, 4), st.sampled_from(["A", "B", "C"]))),
        pair=st.tuples(st.integers(0, 4), st.integers(0, 4)).filter(lambda p: p[0] != p[1]),
    )
    def example(events, links, aliases, pair):
        try:
            with transaction.atomic():
                actors = [
                    actor_create(slug=f"fuzz-{n}", name=f"Fuzz {n}", kind="group") for n in range(5)
                ]
                for participants in events:
                    event_create(
                        type="CONSULT",
                        title="Fuzz",
                        participants=list(dict.fromkeys((actors[a], r) for a, r in participants)),
                        evidence=[span],
                        date_end=source.published_on,
                        date_precision="unknown",
                    )
                for speaker, target in links:
                    statement_create(
                        speaker=actors[speaker],
                        targets=[actors[target]],
                        kind="claim",
                        content="Fuzz.",
                        evidence=[span],
                        date_end=source.published_on,
                        date_precision="unknown",
                    )
                for actor, name in set(aliases):
                    ActorAlias.objects.create(actor=actors[actor], name=name)
                before = _state()
                record, into = lock_pair(Actor, actors[pair[0]].pk, actors[pair[1]].pk)
                done = actor_merge(actor=record, into=into)
                assert not EventParticipant.objects.filter(actor=record).exists()
                assert not StatementActor.objects.filter(actor=record).exists()
                assert not Statement.objects.filter(speaker=record).exists()
                assert not ActorAlias.objects.filter(actor=record).exists()
                had = sum(1 for _, a, _ in before["participants"] if a == record.pk)
                moved = done["moved"].get("events.EventParticipant.actor")
                counted = len(moved["moved"]) + len(moved["dropped"]) if moved else 0
                assert counted == had
                [locked] = [Actor.objects.select_for_update().get(pk=record.pk)]
                actor_unmerge(actor=locked)
                assert _state() == before
                raise _Undo
        except _Undo:
            pass

    example()


def test_documents_and_mentions_see_the_target_of_a_merge(duplicate, token_client):
    from events.mentions import mentions
    from events.resolution import actor_by_reference, find_actor

    client = token_client("change_actor", if_match=None)
    usa, into = duplicate["usa"], duplicate["into"]
    assert merge(client, usa, into).status_code == 200
    assert actor_by_reference("usa") == into
    assert actor_by_reference(usa.pk) == into
    found = find_actor({"key": "usa", "name": "USA"})
    assert found.record == into and not found.conflicts
    named = {
        match["id"]
        for span in mentions("The USA and the United States.")["names"]
        for match in span["matches"]
    }
    assert named == {into.pk}  # the merged name is the target's alias now


def test_an_affiliation_both_hold_refuses_the_merge_with_a_409(duplicate, token_client):
    from actors.services import affiliation_create

    client = token_client("change_actor", if_match=None)
    usa, into = duplicate["usa"], duplicate["into"]
    span = span_for_quote(source=Source.objects.get(), quote="Armenia is facing")
    armenia = Actor.objects.get(slug="armenia")
    for member in (usa, into):
        affiliation_create(member=member, organization=armenia, role="ally", evidence=[span])
    response = merge(client, usa, into)
    assert response.status_code == 409 and "does not delete it" in response.json()["detail"]
    assert Affiliation.objects.filter(member=usa).count() == 1
    assert Actor.objects.get(pk=usa.pk).merged_into_id is None


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"into_revision": 1, "reason": "x"}, "/into"),
        ({"into": 1.5, "into_revision": 1, "reason": "x"}, "/into"),
        ({"into": "united-states", "into_revision": "one", "reason": "x"}, "/into_revision"),
        ({"into": "united-states", "into_revision": 1, "reason": 3}, "/reason"),
        ({"into": "united-states", "into_revision": 1, "reason": "x", "why": 1}, "/why"),
        ({"into": "no-such-actor", "into_revision": 1, "reason": "x"}, "/into"),
    ],
)
def test_a_malformed_merge_request_is_a_400_naming_the_field(seeded, token_client, body, pointer):
    usa = actor_create(slug="usa", name="USA", kind="country")
    response = token_client("change_actor").post(f"{ACTORS}{usa.pk}/merge/", body, format="json")
    assert response.status_code == 400, response.content
    assert pointer in [error["pointer"] for error in response.json()["errors"]]
    assert Actor.objects.get(pk=usa.pk).merged_into_id is None
