"""Clients generated from the committed schema, against the real server.

The server is gunicorn on a free loopback port, on its own database in the
embedded PostgreSQL, migrated and seeded. The Python client runs in this
process; the TypeScript client is compiled with tsc and run with node.
"""

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.live import BIN, ROOT, live_service

POSITION = "X-Commit-Position"
SCHEMA = ROOT / "openapi" / "v1.yaml"
CLIENTS = ROOT / "openapi" / "clients"  # hand-written additions, as `make sdk` copies them
TSC = ROOT / "node_modules" / ".bin" / "tsc"

pytestmark = pytest.mark.skipif(
    "DATABASE_URL" in os.environ, reason="the SDK tests run on the embedded server"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A seeded service under gunicorn; its base URL and a superuser token. It
    reads through the replica router, the primary itself named as its replica,
    so that writes answer X-Commit-Position (tests/ledger/test_replicas.py has
    a real standby)."""
    itself = f"postgres://postgres@/?host={settings.EMBEDDED_POSTGRES_DIR}"
    with live_service(tmp_path_factory.mktemp("gunicorn"), DATABASE_REPLICA_URLS=itself) as service:
        yield {"url": service.url, "token": service.token}


def generate_python_client(out: Path):
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(SCHEMA),
            "--output-path",
            str(out),
            "--meta",
            "none",
            "--config",
            str(SCHEMA.parent / "python-client.yaml"),
        ],
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    shutil.copy(CLIENTS / "commit_position.py", out)


@pytest.fixture(scope="module")
def python_client(tmp_path_factory):
    out = tmp_path_factory.mktemp("python-sdk")
    generate_python_client(out / "event_ledger_api_client")
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("event_ledger_api_client")
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n.startswith("event_ledger_api_client")]:
            del sys.modules[name]


def test_python_client_round_trip(server, python_client):
    sdk = python_client
    from event_ledger_api_client.api.actors import (
        actors_create,
        actors_history_list,
        actors_partial_update,
        actors_retrieve,
    )
    from event_ledger_api_client.api.changes import changes_list
    from event_ledger_api_client.api.events import events_list
    from event_ledger_api_client.commit_position import CommitPosition
    from event_ledger_api_client.models import (
        ActorKindEnum,
        ActorWriteRequest,
        EventsListTypeItem,
        IdentifierRequest,
        PatchedActorWriteRequest,
        Problem,
    )

    anonymous = sdk.Client(base_url=server["url"])
    # The writer carries its commit position from call to call (read-your-writes).
    position = CommitPosition()
    carried = position.httpx_args()
    sent: list[str | None] = []
    carried["event_hooks"]["request"].append(lambda r: sent.append(r.headers.get(POSITION)))
    writer = sdk.AuthenticatedClient(
        base_url=server["url"], token=server["token"], prefix="Token", httpx_args=carried
    )

    # Filtered list, then every page by cursor.
    aid = events_list.sync(client=anonymous, type_=[EventsListTypeItem.AID])
    assert sorted(e.title for e in aid.results) == [
        "Russia intervenes in the first Nagorno-Karabakh war",
        "Russia intervenes in the second Nagorno-Karabakh war",
    ]
    titles, cursor = [], None
    while True:
        kwargs = {"cursor": cursor} if cursor else {}
        page = events_list.sync(client=anonymous, page_size=4, **kwargs)
        titles += [e.title for e in page.results]
        if not page.next_:
            break
        cursor = page.next_.split("cursor=")[1].split("&")[0]
    assert len(titles) == len(set(titles)) == 14

    # Counts: the filtered events by type, and the seed's undated events by month.
    from event_ledger_api_client.api.events import events_counts
    from event_ledger_api_client.models import EventsCountsByItem, EventsCountsTypeItem

    by_type = events_counts.sync(
        client=anonymous,
        by=[EventsCountsByItem.TYPE],
        type_=[EventsCountsTypeItem.AID, EventsCountsTypeItem.ASSAULT],
    )
    assert [(b.key.type_.value, b.count) for b in by_type.buckets] == [("ASSAULT", 5), ("AID", 2)]
    monthly = events_counts.sync(client=anonymous, by=[EventsCountsByItem.MONTH])
    assert (monthly.total, monthly.undated, monthly.buckets) == (14, 14, [])

    # Create with a token, update with If-Match, and a stale revision as a typed error.
    created = actors_create.sync_detailed(
        client=writer,
        body=ActorWriteRequest(
            slug="georgia",
            name="Georgia",
            kind=ActorKindEnum.COUNTRY,
            country="GEO",
            identifiers=[IdentifierRequest(scheme="wikidata", value="Q230")],
        ),
        x_change_reason="SDK round trip",
    )
    assert created.status_code == 201, created.content
    actor = created.parsed
    assert (actor.name, actor.revision) == ("Georgia", 1)
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", created.headers[POSITION])
    assert position.position == created.headers[POSITION]
    assert actors_retrieve.sync(id=actor.id, client=writer).name == "Georgia"
    assert sent == [None, created.headers[POSITION]]  # the read sent the write's position

    updated = actors_partial_update.sync_detailed(
        id=actor.id, client=writer, body=PatchedActorWriteRequest(name="Sakartvelo"), if_match='"1"'
    )
    assert updated.status_code == 200 and updated.parsed.revision == 2
    assert updated.headers["ETag"] == '"2"'
    assert position.position == updated.headers[POSITION] != created.headers[POSITION]

    stale = actors_partial_update.sync_detailed(
        id=actor.id, client=writer, body=PatchedActorWriteRequest(name="Late"), if_match='"1"'
    )
    assert stale.status_code == 412
    assert isinstance(stale.parsed, Problem)
    assert stale.parsed.current_revision == 2
    assert actors_retrieve.sync(id=actor.id, client=anonymous).name == "Sakartvelo"

    history = actors_history_list.sync(id=actor.id, client=anonymous)
    assert [(e.revision, e.action.value) for e in history.results] == [(2, "update"), (1, "create")]
    assert history.results[1].reason == "SDK round trip"
    assert history.results[0].changes["name"].to_dict() == {
        "before": "Georgia",
        "after": "Sakartvelo",
    }

    # The change feed, followed to its end, ends with this actor's two revisions.
    changes, after = [], None
    while True:
        kwargs = {"after": after} if after else {}
        feed = changes_list.sync(client=anonymous, page_size=20, **kwargs)
        changes += feed.results
        after = feed.cursor
        if not feed.next_:
            break
    mine = [
        (c.action.value, c.revision)
        for c in changes
        if c.id == actor.id and c.resource.value == "actors"
    ]
    assert mine == [("create", 1), ("update", 2)]
    assert len(changes) > 45  # the seed's records too


ROUND_TRIP_TS = """
import { Configuration, EventsApi, ActorsApi, EventsListTypeEnum, ResponseError } from "./client";
import { CommitPosition } from "./client/commitPosition";

declare const process: { env: Record<string, string | undefined>; exit(code: number): never };

async function main(): Promise<void> {
  const base = process.env.BASE_URL as string;
  const reader = new Configuration({ basePath: base });
  // The writer carries its commit position from call to call (read-your-writes).
  const position = new CommitPosition();
  const sent: (string | null)[] = [];
  const writer = new Configuration({
    basePath: base,
    headers: { Authorization: `Token ${process.env.TOKEN}` },
    middleware: [
      position,
      {
        pre: async (context) => {
          sent.push(new Headers(context.init.headers).get("X-Commit-Position"));
        },
      },
    ],
  });
  const events = new EventsApi(reader);
  const aid = await events.eventsList({ type: [EventsListTypeEnum.Aid] });
  let titles: string[] = [];
  let cursor: string | undefined = undefined;
  for (;;) {
    const page = await events.eventsList({ pageSize: 5, cursor });
    titles = titles.concat(page.results.map((e) => e.title));
    if (!page.next) break;
    cursor = new URL(page.next).searchParams.get("cursor") ?? undefined;
  }
  const actors = new ActorsApi(writer);
  const actor = await actors.actorsCreate({
    actorWriteRequest: { slug: "armenia-ts", name: "Armenia (TS)", kind: "country" },
  });
  const createdAt = position.position;
  await actors.actorsRetrieve({ id: actor.id });
  const changed = await actors.actorsPartialUpdate({
    id: actor.id, ifMatch: `"${actor.revision}"`, patchedActorWriteRequest: { name: "Hayastan" },
  });
  let staleStatus = 0;
  try {
    await actors.actorsPartialUpdate({
      id: actor.id, ifMatch: `"${actor.revision}"`, patchedActorWriteRequest: { name: "Late" },
    });
  } catch (error) {
    if (error instanceof ResponseError) staleStatus = error.response.status;
  }
  const history = await new ActorsApi(reader).actorsHistoryList({ id: actor.id });
  // A duplicate merged into the actor: its detail is a 308 to it, which fetch follows.
  const duplicate = await actors.actorsCreate({
    actorWriteRequest: { slug: "hayastan-ts", name: "Hayastan (TS)", kind: "country" },
  });
  await actors.actorsMergeCreate({
    id: duplicate.id,
    ifMatch: `"${duplicate.revision}"`,
    actorMergeRequestRequest: { into: actor.slug, intoRevision: changed.revision, reason: "one" },
  });
  const followed = await new ActorsApi(reader).actorsRetrieve({ id: duplicate.id });
  let redirect: string[] = [];
  try {
    await new ActorsApi(reader).actorsRetrieve({ id: duplicate.id }, { redirect: "manual" });
  } catch (error) {
    if (error instanceof ResponseError) {
      redirect = [String(error.response.status), error.response.headers.get("Location") ?? ""];
    }
  }
  console.log(JSON.stringify({
    aid: aid.results.length,
    pages: titles.length,
    revision: changed.revision,
    staleStatus,
    history: history.results.map((entry) => entry.action),
    merged: { id: duplicate.id, followed: followed.id, name: followed.name, redirect },
    actor: { id: actor.id, url: actor.url },
    position: { createdAt, sentWithRead: sent[1], last: position.position },
  }));
}

main().catch((error) => { console.error(error); process.exit(1); });
"""


@pytest.fixture(scope="module")
def documents_server(tmp_path_factory):
    """A service of its own: the documents stored here must not change what the
    round trips count on the shared one."""
    with live_service(tmp_path_factory.mktemp("gunicorn-documents")) as service:
        yield {"url": service.url, "token": service.token}


def test_python_client_stores_a_document_after_a_dry_run(documents_server, python_client):
    """The workflow of docs/api.md ("Documents"): check, fix, store, see the
    mentions, correct."""
    server = documents_server
    from event_ledger_api_client import AuthenticatedClient
    from event_ledger_api_client.api.documents import (
        documents_create,
        documents_retrieve,
        documents_update,
    )
    from event_ledger_api_client.api.sources import sources_mentions_retrieve
    from event_ledger_api_client.models import (
        DocumentReapplyRequest,
        DocumentReport,
        DocumentWriteRequest,
        Problem,
    )

    writer = AuthenticatedClient(base_url=server["url"], token=server["token"], prefix="Token")
    text = "Georgia and Armenia signed a transit agreement in Tbilisi on Tuesday."
    annotation = {
        "format": "event-ledger-annotation/1",
        "actors": [{"key": "georgia", "name": "Georgia", "kind": "country", "country": "GEO"}],
        "events": [
            {
                "type": "AGREE",
                "title": "Georgia and Armenia sign a transit agreement",
                "date": {"start": "2024-06-11", "end": "2024-06-11", "precision": "day"},
                "participants": [
                    {"actor": "georgia", "role": "participant"},
                    {"actor": "wikidata:Q399", "role": "participant"},
                ],
                "evidence": ["Georgia and Armenia signed a transit agreement in tbilisi"],
            }
        ],
    }
    body = DocumentWriteRequest(text=text, published_on="2024-06-12", annotation=annotation)
    checked = documents_create.sync(client=writer, body=body, dry_run=True)
    assert isinstance(checked, DocumentReport) and not checked.valid
    [problem] = checked.problems
    assert problem.pointer == "/annotation/events/0/evidence/0"
    assert "in Tbilisi" in problem.hint

    annotation["events"][0]["evidence"] = ["Georgia and Armenia signed a transit agreement"]
    body = DocumentWriteRequest(text=text, published_on="2024-06-12", annotation=annotation)
    stored = documents_create.sync_detailed(client=writer, body=body)
    assert stored.status_code == 201, stored.content
    assert isinstance(stored.parsed, DocumentReport) and stored.parsed.valid
    assert stored.parsed.counts.to_dict()["events"] == 1
    again = documents_create.sync(client=writer, body=body)
    assert isinstance(again, Problem) and again.status == 400

    # What the stored text mentions, then a correction of its annotation.
    source_id = int(stored.parsed.source.rstrip("/").rsplit("/", 1)[1])
    found = sources_mentions_retrieve.sync(client=writer, id=source_id)
    assert [name.text for name in found.names] == ["Georgia", "Armenia"]
    document = documents_retrieve.sync_detailed(client=writer, id=source_id)
    assert document.status_code == 200 and document.parsed.annotation["format"]
    [event_id] = document.parsed.records.to_dict()["events"]
    annotation["events"][0]["title"] = "Georgia and Armenia sign a transit deal"
    corrected = DocumentReapplyRequest(annotation=annotation)
    report = documents_update.sync(
        client=writer, id=source_id, body=corrected, if_match=document.headers["etag"]
    )
    assert isinstance(report, DocumentReport) and report.valid, report
    assert {(change.resource, change.id) for change in report.updated} == {
        ("sources", source_id),
        ("events", event_id),
    }
    stale = documents_update.sync(
        client=writer, id=source_id, body=corrected, if_match=document.headers["etag"]
    )
    assert isinstance(stale, Problem) and stale.status == 412


@pytest.fixture(scope="module")
def merge_server(tmp_path_factory):
    """A service of its own: the merge moves seeded participations and takes an
    actor out of the list, which the round trips on the shared one must not see."""
    with live_service(tmp_path_factory.mktemp("gunicorn-merge")) as service:
        yield {"url": service.url, "token": service.token}


def test_python_client_follows_a_merged_actor_to_its_target(merge_server, python_client):
    """docs/api.md "Merging duplicates": the unnamed ambassador of the seed is
    merged into the named one; its detail redirects (308) to the target, which a
    client made with follow_redirects=True follows, and filters by its id find
    the target's events; the unmerge makes it answer for itself again."""
    server = merge_server
    sdk = python_client
    from event_ledger_api_client.api.actors import (
        actors_create,
        actors_history_list,
        actors_list,
        actors_merge_create,
        actors_retrieve,
        actors_unmerge_create,
    )
    from event_ledger_api_client.api.events import events_list
    from event_ledger_api_client.models import (
        Actor,
        ActorKindEnum,
        ActorMergeRequestRequest,
        ActorWriteRequest,
        MergeReport,
        Problem,
        UnmergeRequestRequest,
    )

    anonymous = sdk.Client(base_url=server["url"])
    following = sdk.Client(base_url=server["url"], follow_redirects=True)
    writer = sdk.AuthenticatedClient(base_url=server["url"], token=server["token"], prefix="Token")

    def event_titles(actor: str) -> list[str]:
        page = events_list.sync(client=anonymous, actor=[actor], page_size=100)
        assert not page.next_
        return sorted(event.title for event in page.results)

    [old] = actors_list.sync(client=writer, slug="armenian-ambassador-to-russia").results
    old_events = event_titles(str(old.id))
    assert old_events  # the seed's: summoned by Russia
    target = actors_create.sync_detailed(
        client=writer,
        body=ActorWriteRequest(
            slug="named-ambassador", name="Named ambassador", kind=ActorKindEnum.PERSON
        ),
    )
    assert target.status_code == 201, target.content
    target = target.parsed
    assert event_titles(str(target.id)) == []

    old_detail = actors_retrieve.sync_detailed(id=old.id, client=anonymous)
    merged = actors_merge_create.sync_detailed(
        id=old.id,
        client=writer,
        body=ActorMergeRequestRequest(
            into=target.slug, into_revision=target.revision, reason="the ambassador was named"
        ),
        if_match=old_detail.headers["ETag"],
    )
    assert merged.status_code == 200, merged.content
    assert isinstance(merged.parsed, MergeReport)
    assert (merged.parsed.merged, merged.parsed.into) == (old.url, target.url)
    assert merged.parsed.moved["participations"] == len(old_events)
    # Refusals parse to problems: merging the merged one again (409), a stale If-Match (412).
    now = actors_retrieve.sync(id=target.id, client=anonymous).revision
    for record, if_match, status in ((old, "*", 409), (target, '"999"', 412)):
        refused = actors_merge_create.sync_detailed(
            id=record.id,
            client=writer,
            body=ActorMergeRequestRequest(into=target.slug, into_revision=now, reason="no"),
            if_match=if_match,
        )
        assert refused.status_code == status, refused.content
        assert isinstance(refused.parsed, Problem), refused.parsed

    # Not followed: the 308 and where it points. Followed: the target.
    redirect = actors_retrieve.sync_detailed(id=old.id, client=anonymous)
    assert redirect.status_code == 308 and redirect.parsed is None
    assert redirect.headers["Location"] == target.url
    found = actors_retrieve.sync_detailed(id=old.id, client=following)
    assert found.status_code == 200
    assert isinstance(found.parsed, Actor)
    assert (found.parsed.id, found.parsed.name) == (target.id, "Named ambassador")
    assert "Armenian ambassador to Russia" in found.parsed.aliases
    assert actors_retrieve.sync(id=old.id, client=following).id == target.id

    # Filters by the old id or slug mean the target.
    assert event_titles(str(target.id)) == old_events
    assert event_titles(str(old.id)) == old_events
    assert event_titles(old.slug) == old_events

    # History shows the merge; its revision is what the unmerge's If-Match gives.
    [latest, *_] = actors_history_list.sync(id=old.id, client=anonymous).results
    assert latest.merge.to_dict() == {"merged": old.id, "into": target.id, "undone": False}
    unmerged = actors_unmerge_create.sync_detailed(
        id=old.id,
        client=writer,
        body=UnmergeRequestRequest(reason="two people after all"),
        if_match=f'"{latest.revision}"',
    )
    assert unmerged.status_code == 200, unmerged.content
    assert isinstance(unmerged.parsed, MergeReport)
    itself = actors_retrieve.sync_detailed(id=old.id, client=following)
    assert itself.status_code == 200
    assert (itself.parsed.id, itself.parsed.merged_into) == (old.id, None)
    assert actors_retrieve.sync_detailed(id=old.id, client=anonymous).status_code == 200
    assert event_titles(str(old.id)) == old_events
    assert event_titles(str(target.id)) == []


@pytest.mark.skipif(not TSC.exists(), reason="run `npm ci` (make test does) for TypeScript")
def test_typescript_client_compiles_and_round_trips(server, tmp_path):
    client = tmp_path / "client"
    generated = subprocess.run(
        [
            str(BIN / "openapi-generator-cli"),
            "generate",
            "-i",
            str(SCHEMA),
            "-g",
            "typescript-fetch",
            "-o",
            str(client),
            "--additional-properties=supportsES6=true",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "WARN" not in generated.stdout + generated.stderr
    shutil.copy(CLIENTS / "commitPosition.ts", client)
    (tmp_path / "roundtrip.ts").write_text(ROUND_TRIP_TS)
    (tmp_path / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "target": "es2020",
                    "module": "commonjs",
                    "lib": ["es2020", "dom"],
                    "strict": True,
                    "outDir": "build",
                    "skipLibCheck": True,
                    "types": [],
                },
                "files": ["roundtrip.ts"],
            }
        )
    )
    compiled = subprocess.run(
        [str(TSC), "-p", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    node = shutil.which("node")
    ran = subprocess.run(
        [node, str(tmp_path / "build" / "roundtrip.js")],
        env={**os.environ, "BASE_URL": server["url"], "TOKEN": server["token"]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    actor = result.pop("actor")
    carried = result.pop("position")
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", carried["createdAt"])
    assert carried["sentWithRead"] == carried["createdAt"]  # the read sent the write's position
    assert carried["last"] != carried["createdAt"]  # the later writes' positions replaced it
    assert result == {
        "aid": 2,
        "pages": 14,
        "revision": 2,
        "staleStatus": 412,
        "history": ["update", "create"],
        "merged": {
            "id": result["merged"]["id"],
            "followed": actor["id"],
            "name": "Hayastan",
            "redirect": ["308", actor["url"]],
        },
    }
    assert result["merged"]["id"] != actor["id"]
