"""The resource registry: what the apps register is what the platform serves,
and the platform's code depends on no domain app."""

import ast
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.urls import reverse

from actors.models import Actor, ActorAlias, ActorIdentifier, Affiliation
from events.models import (
    Event,
    EventParticipant,
    Place,
    PloverRecord,
    PloverStale,
    Statement,
    StatementActor,
    StatementEvent,
)
from ledger import registry
from ledger.api.serializers import ChangeSerializer
from sources.models import Evidence, Source

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_APPS = ("sources", "actors", "events")


def test_each_app_registers_its_resources():
    assert registry.names() == [
        "actors",
        "affiliations",
        "events",
        "places",
        "sources",
        "statements",
    ]
    assert registry.get("events").model is Event
    assert registry.for_model(Affiliation).basename == "affiliation"
    assert registry.for_model(Evidence) is None  # a child row, not a resource
    assert [child.name for child in registry.children(Statement)] == [
        "actor_links",
        "about_events",
        "evidence",
    ]
    assert registry.refs(EventParticipant) == {"actor": Actor}


def test_every_registered_resource_has_its_routes():
    for resource in registry.resources():
        assert reverse(f"{resource.basename}-list") == f"/api/v1/{resource.name}/"
        assert reverse(f"{resource.basename}-detail", kwargs={"pk": 1}).endswith("/1/")
        assert reverse(f"{resource.basename}-history", kwargs={"pk": 1}).endswith("/1/history/")


def test_the_change_feed_names_the_registered_resources():
    assert list(ChangeSerializer().fields["resource"].choices) == registry.names()


def test_every_data_model_of_the_domain_apps_is_registered():
    """A model added to a domain app but not registered (as a resource, a
    child row or a table derived from them) would be missing from history
    reconstruction and the roles."""
    registered = set(registry.data_models())
    derived = set(registry.derived_models())
    assert derived == {PloverRecord, PloverStale}
    assert not registered & derived
    for label in DOMAIN_APPS:
        for model in apps.get_app_config(label).get_models():
            if model.__name__.endswith("Snapshot"):
                continue
            assert model in registered | derived, f"{model._meta.label} is not in the registry"
    assert registered == {
        Source,
        Evidence,
        Place,
        Event,
        EventParticipant,
        Statement,
        StatementActor,
        StatementEvent,
        Actor,
        ActorAlias,
        ActorIdentifier,
        Affiliation,
    }


def test_a_resource_is_registered_once():
    with pytest.raises(ImproperlyConfigured, match="registered twice"):
        registry.register(registry.Resource("events", "event", Event, object))
    with pytest.raises(ImproperlyConfigured, match="registered twice"):
        registry.register(registry.Resource("happenings", "happening", Event, object))
    assert registry.get("events").serializer is not object


def test_reading_the_registry_before_the_apps_are_ready_is_refused(monkeypatch):
    monkeypatch.setattr(apps, "ready", False)
    with pytest.raises(ImproperlyConfigured, match="before every app has registered"):
        registry.names()


@pytest.mark.django_db
def test_roles_cover_the_registered_data_and_nothing_else():
    from django.contrib.auth.models import Group

    call_command("setup_roles", stdout=StringIO())
    curator = Group.objects.get(name="curator")
    viewer = Group.objects.get(name="viewer")
    curator_perms = set(curator.permissions.values_list("content_type__model", "codename"))
    models = {model for model, _ in curator_perms}
    assert models == {m._meta.model_name for m in registry.data_models()} | {
        f"{m._meta.model_name}snapshot" for m in registry.data_models()
    }
    # Idempotency keys, the change log, users and tokens are the service's own.
    assert not {"idempotencykey", "change", "user", "token"} & models
    # Snapshots are read, never written, by people.
    assert {codename for model, codename in curator_perms if model.endswith("snapshot")} == {
        f"view_{model}" for model in models if model.endswith("snapshot")
    }
    assert set(viewer.permissions.values_list("codename", flat=True)) == {
        codename for _, codename in curator_perms if codename.startswith("view_")
    }


def imported_modules(package: str) -> dict[str, set[str]]:
    """Module file -> the top-level packages it imports (at any depth)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    "package, may_not_import",
    [
        ("ledger", {"sources", "actors", "events", "config"}),
        ("sources", {"actors", "events", "config"}),
        ("actors", {"events", "config"}),
        ("events", {"config"}),
    ],
)
def test_imports_run_one_way(package, may_not_import):
    """ledger <- sources <- actors <- events; config wires them and nobody imports it."""
    wrong = {
        module: sorted(names & may_not_import)
        for module, names in imported_modules(package).items()
        if names & may_not_import
    }
    assert wrong == {}
