"""The resources the platform serves, registered by the apps that define them.

The platform knows no domain model. Each app registers its resources in its
`AppConfig.ready()`; the change feed, history reconstruction, the feed's
schema and the curator and viewer roles read them from here:

    registry.register(Resource(
        name="events", basename="event", model=Event, serializer=EventSerializer,
        children=(Child("participants", EventParticipant, "event_id", lambda p: p.pk,
                        refs={"actor": Actor}),),
        refs={"place": Place},
    ))
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@dataclass(frozen=True)
class Child:
    """Rows a resource's representation nests (participants, evidence, ...):
    their changes are changes of the resource, and history rebuilds them."""

    name: str  # the prefetch cache the read serializer reads
    model: type[models.Model]
    fk: str  # the child's column holding the resource's id
    order: Callable[[Any], Any]  # the order the read serializer lists them in
    refs: Mapping[str, type[models.Model]] = field(default_factory=dict)
    # When set, the cache holds the records this foreign key of each row names
    # (a link table shown as the records it links), not the rows themselves.
    through: str | None = None


@dataclass(frozen=True)
class Resource:
    """A revisioned record type the API serves under `/api/v1/<name>/`."""

    name: str  # plural, as in its URL and the change feed: "events"
    basename: str  # the URL names of its views: "event-detail", "event-history"
    model: type[models.Model]
    serializer: type  # the read representation, also of past revisions and feed entries
    children: tuple[Child, ...] = ()
    # Foreign keys the representation shows as nested records: field -> model.
    refs: Mapping[str, type[models.Model]] = field(default_factory=dict)
    # Tables computed from the resource's data and kept by the database (the
    # events' stored PLOVER records): not data, so no history, no roles.
    derived: tuple[type[models.Model], ...] = ()


_resources: dict[str, Resource] = {}


def register(resource: Resource) -> None:
    """Add a resource; a second one of the same name or model is a mistake."""
    for known in _resources.values():
        if known.name == resource.name or known.model is resource.model:
            raise ImproperlyConfigured(
                f"Resource {resource.name!r} ({resource.model.__name__}) is registered twice."
            )
    _resources[resource.name] = resource


def unregister(name: str) -> None:
    """Remove a resource (for tests that register their own)."""
    del _resources[name]


def _ready() -> dict[str, Resource]:
    if not apps.ready:
        raise ImproperlyConfigured(
            "The resource registry is read before every app has registered its resources; "
            "read it at request time, not when a module is imported."
        )
    return _resources


def resources() -> list[Resource]:
    """Every registered resource, by name."""
    return [resource for _, resource in sorted(_ready().items())]


def names() -> list[str]:
    return sorted(_ready())


class _Names(Sequence):
    """The resource names, read when used: for declarations made when a
    module is imported (an OpenAPI enum), before the apps have registered."""

    def __getitem__(self, index):
        return names()[index]

    def __len__(self) -> int:
        return len(names())


NAMES = _Names()


def get(name: str) -> Resource:
    """The resource called `name` (KeyError when there is none)."""
    return _ready()[name]


def for_model(model: type[models.Model]) -> Resource | None:
    """The resource whose record type is `model`, if it is one."""
    return next((r for r in _ready().values() if r.model is model), None)


def children(model: type[models.Model]) -> tuple[Child, ...]:
    resource = for_model(model)
    return resource.children if resource else ()


def refs(model: type[models.Model]) -> Mapping[str, type[models.Model]]:
    """The nested foreign keys of a resource model or of one of its children."""
    for resource in _ready().values():
        if resource.model is model:
            return resource.refs
        for child in resource.children:
            if child.model is model:
                return child.refs
    return {}


def derived_models() -> list[type[models.Model]]:
    """The models computed from the resources' data (`Resource.derived`)."""
    return [model for resource in resources() for model in resource.derived]


def data_models() -> list[type[models.Model]]:
    """The models holding the resources' data: each resource and its children."""
    found: list[type[models.Model]] = []
    for resource in resources():
        for model in (resource.model, *(child.model for child in resource.children)):
            if model not in found:
                found.append(model)
    return found
