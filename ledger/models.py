"""What every versioned resource is made of: revisions, dated intervals with a
precision, snapshots of every write, the change feed and idempotency keys."""

import datetime
import functools
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

import pghistory
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import NON_FIELD_ERRORS, FieldError, ValidationError
from django.core.validators import RegexValidator
from django.db import DatabaseError, connections, models, router, transaction
from django.db.models import Expression, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Coalesce, ExtractYear, Mod
from django.db.models.lookups import Exact
from django.db.models.sql import Query

from ledger.triggers import CommitSeq

COUNTRY_CODE_RE = r"^[A-Z]{3}$"
country_code_validator = RegexValidator(
    COUNTRY_CODE_RE, "Use an ISO 3166-1 alpha-3 code in capitals, such as ARM (or IGO, EUR)."
)

# A slug is never digits alone: wherever the API takes an id it takes a slug
# too, and digits are read as the id. (A positive pattern, so that the OpenAPI
# document states it; the check constraint says the same to the database.)
SLUG_RE = r"^[-a-zA-Z0-9_]*[-a-zA-Z_][-a-zA-Z0-9_]*\Z"
SLUG_DIGITS_ONLY_RE = r"^[0-9]+$"
slug_not_digits_validator = RegexValidator(
    SLUG_RE,
    "A slug has letters, digits, hyphens and underscores, and not digits alone: digits "
    "alone would read as an id.",
    code="invalid",
)


# Text search configuration of the full-text indexes and queries.
SEARCH_CONFIG = "english"


class DatePrecision(models.TextChoices):
    DAY = "day", "Day"
    MONTH = "month", "Month"
    YEAR = "year", "Year"
    DECADE = "decade", "Decade"
    UNKNOWN = "unknown", "Unknown"


def format_date(day: datetime.date, precision: str) -> str:
    """Render one date at a precision: "2023", "Sep 2023", "1990s", "9 Nov 2023"."""
    if precision == DatePrecision.YEAR:
        return str(day.year)
    if precision == DatePrecision.MONTH:
        return day.strftime("%b %Y")
    if precision == DatePrecision.DECADE:
        return f"{day.year // 10 * 10}s"
    return f"{day.day} {day:%b %Y}"


def format_interval(start: datetime.date | None, end: datetime.date | None, precision: str) -> str:
    """Render a dated interval at its precision: "2023", "Sep 2023", "before 9 Nov 2023"."""
    if start is None:
        return "date unknown" if end is None else f"before {format_date(end, precision)}"
    if end is None:
        word = "after" if precision == DatePrecision.UNKNOWN else "since"
        return f"{word} {format_date(start, precision)}"
    first, last = format_date(start, precision), format_date(end, precision)
    if precision == DatePrecision.UNKNOWN:
        return f"between {first} and {last}"
    return first if first == last else f"{first} – {last}"


BOOLEAN = models.BooleanField()


# Whether full_clean() leaves to the database the constraints it enforces as
# each row is written (see checks_left_to_database).
_LEFT_TO_DATABASE: ContextVar[bool] = ContextVar("checks_left_to_database", default=False)


@contextmanager
def checks_left_to_database() -> Iterator[None]:
    """Inside the block, `full_clean()` does not query the database for what
    the database itself refuses at the write, before the statement ends: the
    check constraints, the unique ones that are not deferrable and unique
    fields (`left_to_database`). The rule stays in one place, the constraint;
    only its query is not sent first.

    For a batch tried whole, whose caller rolls the whole try back at any
    error, the database's included, and then redoes it with every check, so
    that each problem is reported as `full_clean()` reports it
    (`events.documents.import_document`): most batches have no problem, and
    those queries were a round trip per record. Outside such a block a
    refusal of the database would be an error, not a problem reported."""
    token = _LEFT_TO_DATABASE.set(True)
    try:
        yield
    finally:
        _LEFT_TO_DATABASE.reset(token)


def left_to_database(constraint: models.BaseConstraint) -> bool:
    """Whether `full_clean()` leaves `constraint` to the database now: inside
    `checks_left_to_database()`, and enforced at the write (not deferrable)."""
    return _LEFT_TO_DATABASE.get() and getattr(constraint, "deferrable", None) is None


class Revisioned(models.Model):
    """A resource with a revision number: 1 when created, one more for every
    transaction that changes it or one of its child rows (participants,
    evidence, aliases, ...). Database triggers keep it, whatever path writes:
    each concrete model declares `Revision()` and `ChangeLog(resource=...)` in
    its `Meta.triggers`, and its child rows `TouchesParent(...)`
    (ledger/triggers.py).

    Its check constraints are validated in one query (see
    `validate_constraints`), not one savepoint and query each; for a change
    of a stored record, only those the change can break (`full_clean(changed=...)`).
    """

    revision = models.PositiveIntegerField(default=1, editable=False)
    # The transaction that set `revision`: a second change in the same
    # transaction keeps the number. Internal; never shown.
    revised_tx = models.BigIntegerField(default=0, editable=False)

    class Meta:
        abstract = True

    def full_clean(
        self,
        exclude: Iterable[str] | None = None,
        validate_unique: bool = True,
        validate_constraints: bool = True,
        *,
        changed: Collection[str] | None = None,
    ) -> None:
        """Django's full_clean. `changed` names the fields a change of this
        stored record sets (see `validate_constraints`); None: any may have."""
        errors: dict = {}
        if validate_unique and _LEFT_TO_DATABASE.get():
            # Unique fields and unique_together are unique indexes, which the
            # database enforces at the write; unique_for_date is Django's alone.
            _, date_checks = self._get_unique_checks(exclude=exclude)  # type: ignore[attr-defined]
            validate_unique = bool(date_checks)
        try:
            super().full_clean(exclude, validate_unique, validate_constraints=False)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if validate_constraints:
            # As Django does: not over the fields that already failed.
            failed = {name for name in errors if name != NON_FIELD_ERRORS}
            try:
                self.validate_constraints(exclude={*(exclude or ()), *failed}, changed=changed)
            except ValidationError as error:
                errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        """Django's, without the query by which a foreign key checks that its
        record exists when that record is in hand: read from the database or
        saved to it, as a service is given it (a statement's speaker, an
        event's place). The database's foreign key backs it up, as always."""
        in_hand = [
            field.name
            for field in self._meta.concrete_fields
            if field.many_to_one and self._in_hand(field)
        ]
        super().clean_fields(exclude={*(exclude or ()), *in_hand})

    def _in_hand(self, field: Any) -> bool:
        if not field.is_cached(self) or field.get_limit_choices_to():
            return False
        record = field.get_cached_value(self)
        return (
            record is not None
            and not record._state.adding
            and record.pk is not None
            and getattr(self, field.attname) == getattr(record, field.target_field.attname)
        )

    def validate_constraints(
        self, exclude: Collection[str] | None = None, *, changed: Collection[str] | None = None
    ) -> None:
        """Django checks each CheckConstraint with a query in a savepoint of
        its own (three round trips each); here all of them are columns of one
        SELECT. Other constraints, and a batch the database refuses to
        evaluate, take Django's own path.

        `changed` names the fields a change of this stored record sets: the
        record met every constraint (the database enforces them), so only
        check constraints over those fields (or over generated fields) can
        fail, and only they are checked. None: all are."""
        excluded = None if exclude is None else set(exclude)
        using = router.db_for_write(self.__class__, instance=self)
        checks = [
            constraint
            for _, constraints in self.get_constraints()
            for constraint in constraints
            if isinstance(constraint, models.CheckConstraint)
            and (changed is None or self._may_break(constraint, changed))
            and not left_to_database(constraint)
        ]
        others = [
            (model, constraint)
            for model, constraints in self.get_constraints()
            for constraint in constraints
            if not isinstance(constraint, models.CheckConstraint)
            and not left_to_database(constraint)
        ]
        errors: dict = {}
        try:
            failed = self._failed_checks(checks, excluded, using)
        except DatabaseError:
            failed = None
        if failed is None:  # evaluate them one by one, as Django does
            others = [(self.__class__, c) for c in checks] + others
            failed = []
        for constraint in failed:
            error = ValidationError(
                constraint.get_violation_error_message(), code=constraint.violation_error_code
            )
            errors = error.update_error_dict(errors)
        for model, constraint in others:
            try:
                constraint.validate(model, self, exclude=excluded, using=using)
            except ValidationError as error:
                if (
                    getattr(error, "code", None) == "unique"
                    and isinstance(constraint, models.UniqueConstraint)
                    and len(constraint.fields) == 1
                ):
                    errors.setdefault(constraint.fields[0], []).append(error)
                else:
                    errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def _may_break(self, constraint: models.CheckConstraint, changed: Collection[str]) -> bool:
        """Whether setting the fields `changed` can break the constraint."""
        if not isinstance(constraint.condition, Q):
            return True
        generated = {f.name for f in self._meta.concrete_fields if f.generated}
        return bool(constraint.condition.referenced_base_fields & (set(changed) | generated))

    def _failed_checks(self, checks, exclude, using) -> list:
        """The check constraints the instance's values violate, in one query.
        A constraint over an excluded field is skipped, as Django skips it.

        The query is built once per model, checks, excluded fields and empty
        (NULL) ones, with the other values as its parameters (`_Slot`), and
        kept: resolving and compiling the checks' expressions costs far more
        than running them. An empty value stays in the query as Django puts
        it (`Value(None)`), since Django's SQL depends on it (`isnull` on it is
        decided when compiling)."""
        if not checks:
            return []
        connection = connections[using]
        excluded = frozenset(exclude or ())
        nulls = frozenset(
            name
            for name, attname in _value_fields(type(self))
            if name not in excluded and getattr(self, attname) is None
        )
        names = tuple(constraint.name for constraint in checks)
        key = (type(self), using, excluded, nulls, names)
        if key not in _CHECK_QUERIES:
            slots = self._slots(excluded, nulls)
            _CHECK_QUERIES[key] = self._check_query(checks, slots, connection) if slots else None
        built = _CHECK_QUERIES[key]
        if built and any(slot.expression_in(self) for slot in built[2]):
            built = None  # a value that is an expression: resolved with it
        if not built:
            against = self._get_field_expression_map(meta=self._meta, exclude=excluded)  # type: ignore[attr-defined]
            built = self._check_query(checks, against, connection)
        sql, params, _, evaluated = built
        if not evaluated:
            return []
        values = [p.prepared(self, connection) if isinstance(p, _Slot) else p for p in params]
        # In a transaction, a savepoint: a failed evaluation must not abort it.
        atomic = transaction.atomic(using=using) if connection.in_atomic_block else nullcontext()
        with atomic, connection.cursor() as cursor:
            cursor.execute(sql, values)
            row = cursor.fetchone()
        return [constraint for constraint, holds in zip(evaluated, row, strict=True) if not holds]

    def _check_query(self, checks, against: dict, connection) -> tuple:
        """The SQL evaluating `checks` over the values `against` (field name
        -> expression), its parameters, the slots among them and the checks
        it evaluates, in its columns' order."""
        # Only the fields the checks refer to (directly or through F()): each
        # annotation is resolved, and a model has far more fields than its
        # checks read.
        conditions = [constraint.condition for constraint in checks]
        referenced: set[str] | None = None
        if all(isinstance(condition, Q) for condition in conditions):
            referenced = set().union(
                *(condition.referenced_base_fields for condition in conditions)
            )
        query = Query(None)
        for name, value in against.items():
            if referenced is None or name in referenced:
                query.add_annotation(value, name, select=False)
        evaluated: list[models.CheckConstraint] = []
        for constraint in checks:
            try:
                holds = ExpressionWrapper(Q(constraint.condition), output_field=BOOLEAN)
                query.add_annotation(
                    Coalesce(holds, True, output_field=BOOLEAN), f"_check_{len(evaluated)}"
                )
            except FieldError:  # refers to an excluded field
                continue
            evaluated.append(constraint)
        if not evaluated:
            return "", [], [], []
        sql, params = query.get_compiler(connection=connection).as_sql()
        slots = [p for p in params if isinstance(p, _Slot)]
        return sql, list(params), slots, evaluated

    def _slots(self, exclude: frozenset, nulls: frozenset) -> dict | None:
        """Django's map of field names to values for validating constraints
        (`_get_field_expression_map`), with a `_Slot` for each value but the
        empty ones (`nulls`); None for a field whose SQL may depend on its
        value."""
        meta = self._meta
        slots: dict = {}
        generated: list[models.GeneratedField] = []
        for field in meta.local_concrete_fields:
            if field.name in exclude:
                continue
            if isinstance(field, models.GeneratedField):
                references = self._get_expr_references(field.expression)  # type: ignore[attr-defined]
                if not any(reference[0] in exclude for reference in references):
                    generated.append(field)
                continue
            if hasattr(field, "get_placeholder") and not isinstance(field, ArrayField):
                return None
            if field.name in nulls:
                slots[field.name] = Value(None, field)
            else:
                slots[field.name] = _Slot(field.attname, field)
        if "pk" not in exclude:
            slots["pk"] = Value(None, meta.pk) if "pk" in nulls else _Slot("pk", meta.pk)
        replacements = {F(name): slot for name, slot in slots.items()}
        for field in generated:
            # A GeneratedField's expression and output field; not in django-stubs.
            expression = field.expression.replace_expressions(replacements)  # type: ignore[attr-defined]
            output_field: Any = field.output_field
            slots[field.name] = ExpressionWrapper(expression, output_field)
        return slots


class _Slot(Expression):
    """A field's value in a check query built once for its model: a
    parameter, given for each instance (`prepared`) as Django's
    `Value(value, field)` gives it."""

    def __init__(self, attname: str, field: models.Field):
        super().__init__(output_field=field)
        self.attname = attname

    def as_sql(self, compiler, connection):
        # An array's placeholder (its cast) does not depend on its value.
        if isinstance(self.output_field, ArrayField):
            # Django's, not in django-stubs.
            placeholder = self.output_field.get_placeholder  # type: ignore[attr-defined]
            return placeholder(None, compiler, connection), [self]
        return "%s", [self]

    def expression_in(self, instance: models.Model) -> bool:
        """Whether the instance holds an expression for the field, which
        Django resolves into the query instead of passing it as a value."""
        value = getattr(instance, self.attname)
        return bool(value) and hasattr(value, "resolve_expression")

    def prepared(self, instance: models.Model, connection):
        value = getattr(instance, self.attname)
        return self.output_field.get_db_prep_value(value, connection=connection)


# (model, database, excluded fields, empty ones, checks) -> what _check_query() built.
_CHECK_QUERIES: dict[tuple, tuple | None] = {}


@functools.cache
def _value_fields(model: type[models.Model]) -> tuple[tuple[str, str], ...]:
    """The (name, attname) of a model's stored fields that hold a value
    (not generated), and ("pk", "pk")."""
    fields = model._meta.local_concrete_fields
    return (*((f.name, f.attname) for f in fields if not f.generated), ("pk", "pk"))


class Mergeable(models.Model):
    """A registry record that can be merged into another, its duplicate
    (ledger/merging.py): it keeps its id and its history, everything that
    referred to it moves to the other record, and the API answers for it with
    a permanent redirect to `merged_into`. `merge` keeps what moved, so that
    an unmerge moves exactly that back."""

    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    merge = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True


def track_history(model_name: str, *, exclude: tuple[str, ...] = (), db_table: str | None = None):
    """Snapshot every insert, update and delete of the model into the table of
    `model_name` (or `db_table`), with the write's context (who, through what, why)."""
    return pghistory.track(
        pghistory.InsertEvent(),
        pghistory.UpdateEvent(),
        pghistory.DeleteEvent(),
        exclude=["revised_tx", *exclude],
        model_name=model_name,
        obj_field=pghistory.ObjForeignKey(related_name="snapshots"),
        meta={"db_table": db_table} if db_table else None,
    )


class DatedInterval(models.Model):
    """A time span with a precision, as UCDP and Wikibase model it.

    The record lies within [date_start, date_end]. An empty start means the
    source gives no lower bound ("before 9 Nov 2023"); an empty end means no
    upper bound (still going on, or "after ..."). At least one bound is known.
    With decade precision the bounds are whole decades (1990-01-01 to
    1999-12-31), with year precision whole years, with month precision whole
    months, so a reader never mistakes a placeholder day for a fact.
    """

    date_start = models.DateField(null=True, blank=True)
    date_end = models.DateField(null=True, blank=True)
    date_precision = models.CharField(
        max_length=10, choices=DatePrecision.choices, default=DatePrecision.DAY
    )
    # The earliest known bound, never empty: the key for ordering by date.
    date_sort = models.GeneratedField(
        expression=Coalesce("date_start", "date_end"),
        output_field=models.DateField(),
        db_persist=True,
    )

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=Q(date_start__isnull=True)
                | Q(date_end__isnull=True)
                | Q(date_start__lte=F("date_end")),
                name="%(app_label)s_%(class)s_date_order",
                violation_error_message="date_start must not be after date_end.",
            ),
            models.CheckConstraint(
                condition=Q(date_start__isnull=False) | Q(date_end__isnull=False),
                name="%(app_label)s_%(class)s_date_bounded",
                violation_error_message="Give date_start, date_end or both.",
            ),
            models.CheckConstraint(
                condition=Q(date_precision__in=DatePrecision.values),
                name="%(app_label)s_%(class)s_precision_valid",
            ),
            models.CheckConstraint(
                condition=~Q(date_precision__in=[DatePrecision.MONTH, DatePrecision.YEAR])
                | Q(date_start__isnull=True)
                | Q(date_start__day=1),
                name="%(app_label)s_%(class)s_start_whole_period",
                violation_error_message=(
                    "With month or year precision, date_start must be the first day of the period."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(date_precision=DatePrecision.YEAR)
                | (
                    (Q(date_start__isnull=True) | Q(date_start__month=1))
                    & (Q(date_end__isnull=True) | (Q(date_end__month=12) & Q(date_end__day=31)))
                ),
                name="%(app_label)s_%(class)s_year_whole",
                violation_error_message=(
                    "With year precision, date_start must be 1 January and date_end 31 December."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(date_precision=DatePrecision.DECADE)
                | (
                    (
                        Q(date_start__isnull=True)
                        | (
                            Q(date_start__month=1)
                            & Q(date_start__day=1)
                            & Q(Exact(Mod(ExtractYear("date_start"), 10), 0))
                        )
                    )
                    & (
                        Q(date_end__isnull=True)
                        | (
                            Q(date_end__month=12)
                            & Q(date_end__day=31)
                            & Q(Exact(Mod(ExtractYear("date_end"), 10), 9))
                        )
                    )
                ),
                name="%(app_label)s_%(class)s_decade_whole",
                violation_error_message=(
                    "With decade precision, the bounds are whole decades: date_start the "
                    "first day of a decade (1 January 1990) and date_end the last "
                    "(31 December 1999)."
                ),
            ),
        ]

    @property
    def date_display(self) -> str:
        return format_interval(self.date_start, self.date_end, self.date_precision)


class ChangeAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"
    MERGE = "merge", "Merged into another record"


class Change(models.Model):
    """One entry of the change feed: a resource created, given a new revision,
    or deleted. Written by a database trigger on every resource table
    (`ChangeLog`), so every write path appears.

    `commit_seq` orders the feed: it is taken when the writing transaction
    commits, under a lock held until the commit ends, so the entries of a
    transaction never become visible behind those of a later one; the feed
    never skips a change, and waits for no unrelated transaction (`CommitSeq`).
    `txid` is the writing transaction.
    """

    resource = models.CharField(max_length=20)
    object_id = models.BigIntegerField()
    action = models.CharField(max_length=10, choices=ChangeAction.choices)
    revision = models.PositiveIntegerField()
    txid = models.BigIntegerField()
    commit_seq = models.BigIntegerField(null=True, editable=False)
    changed_at = models.DateTimeField()

    class Meta:
        db_table = "events_change"  # created by the events app's migrations, before this app
        ordering = ["commit_seq", "id"]
        indexes = [
            models.Index(fields=["commit_seq", "id"], name="events_change_commit_order"),
            models.Index(
                fields=["resource", "commit_seq", "id"], name="events_change_resource_order"
            ),
            models.Index(fields=["txid"], name="events_change_tx"),
        ]
        triggers = [CommitSeq()]

    def __str__(self) -> str:
        return f"{self.action} {self.resource}/{self.object_id} r{self.revision}"


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` for a POST: the first request's outcome,
    replayed to retries with the same key and body until `expires_at`."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"

    user_id = models.BigIntegerField()
    key = models.CharField(max_length=200)
    path = models.CharField(max_length=500)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=20, default=IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.TextField(blank=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "events_idempotencykey"  # as for Change
        constraints = [
            models.UniqueConstraint(fields=["user_id", "key"], name="events_idempotency_key_unique")
        ]
        indexes = [models.Index(fields=["expires_at"], name="events_idempotency_expiry")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
