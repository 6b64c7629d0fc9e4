"""The admin base of a revisioned resource: a reason with each save, edits
based on a stale revision refused, and the History page; for a mergeable
one, merging duplicates and undoing it."""

from typing import Any

import pghistory
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from rest_framework.serializers import BaseSerializer

from ledger.context import MAX_REASON_LENGTH, separate_context
from ledger.history import has_history, with_representations
from ledger.merging import MergeConflict, lock_pair, relation_names


class LedgerAdminForm(forms.ModelForm):
    """The change form of a revisioned record. It remembers the revision the
    curator opened, and refuses the save if someone changed the record since:
    the other change is kept, nothing of this one is written."""

    change_reason = forms.CharField(
        required=False,
        max_length=500,
        label="Reason for this change",
        help_text="Optional; kept in the record's history.",
    )
    based_on_revision = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["based_on_revision"].initial = self.instance.revision

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned
        # The admin's save runs in one transaction: the lock holds until it commits.
        current = (
            type(self.instance)
            .objects.select_for_update()
            .filter(pk=self.instance.pk)
            .values_list("revision", flat=True)
            .first()
        )
        based_on = self.cleaned_data.get("based_on_revision")
        if current is not None and based_on is not None and current != based_on:
            raise ValidationError(
                f"Someone else changed this record after you opened it: it is now at "
                f"revision {current}, you started from revision {based_on}. Your changes "
                "were not saved. Open the record again to see the current version, then "
                "make your change there."
            )
        return cleaned


class LedgerModelAdmin(admin.ModelAdmin):
    """Admin of a revisioned resource: the reason given is recorded with the
    save, and the History page shows the record's revisions from its snapshots:
    who, when, through what, why, and what changed."""

    form = LedgerAdminForm
    # The API representation revisions are compared by; each subclass sets it.
    history_serializer: type[BaseSerializer]

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data.get("change_reason")
        if reason:
            pghistory.context(reason=reason)
        super().save_model(request, obj, form, change)

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is None and not (object_id.isdigit() and has_history(self.model, object_id)):
            # Django's own "no such object" answer of the admin; private, so not in django-stubs.
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, self.model._meta, object_id
            )
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied

        def render(instance):
            return self.history_serializer(instance, context={"request": request}).data

        entries = list(reversed(with_representations(self.model, object_id, render)))
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {obj}" if obj else f"History of deleted #{object_id}",
            "opts": self.model._meta,
            "object": obj,
            "object_id": object_id,
            "entries": entries,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/ledger/history.html", context)


def refusal(exc: Exception) -> str:
    """Why a merge or unmerge was refused, in one line. The database's own
    checks (tables' constraints and triggers, checked at commit) are the
    backstop for what the domain's checks do not foresee: the transaction is
    rolled back and the curator told, not shown an error page."""
    if isinstance(exc, IntegrityError):
        return f"the database refused it: {str(exc).splitlines()[0]}"
    return str(exc)


class RecordChoiceField(forms.ModelChoiceField):
    """A record by id or by slug."""

    def to_python(self, value):
        if isinstance(value, str) and value and not value.isdigit() and self.queryset is not None:
            found = self.queryset.filter(slug=value).values_list("pk", flat=True).first()
            if found is not None:
                value = found
        return super().to_python(value)


class RecordAutocomplete(AutocompleteSelect):
    """The admin's autocomplete, showing a record given by id; a slug typed
    into the form (no script) is looked up by RecordChoiceField instead."""

    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, [v for v in value if str(v).isdigit()], attr)


class MergeForm(forms.Form):
    """The record to merge the selected ones into, and why. `into` is set per
    model (MergeableAdmin.merge_form)."""

    reason = forms.CharField(
        max_length=MAX_REASON_LENGTH,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Why they are one record: kept in the history of each.",
    )
    # The target whose preview the curator saw: a merge is made only after
    # its preview was shown.
    previewed = forms.IntegerField(required=False, widget=forms.HiddenInput)


class UnmergeForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_REASON_LENGTH,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Why the merge is undone: kept in the history.",
    )


class MergedFilter(admin.SimpleListFilter):
    title = "merged"
    parameter_name = "merged"

    def lookups(self, request, model_admin):
        return [("no", "No"), ("yes", "Yes")]

    def queryset(self, request, queryset):
        if self.value() in ("no", "yes"):
            return queryset.filter(merged_into__isnull=self.value() == "no")
        return queryset


class MergeableAdmin(LedgerModelAdmin):
    """Admin of a record that can be merged into its duplicate
    (ledger.merging): the "Merge into…" action on the list, with a page that
    shows, before anything is done, what would move for each record selected;
    merged records marked in the list and read-only, with "Unmerge…" on their
    page. Each merge and unmerge goes through the domain's service, in a
    transaction of its own with both rows locked as the API locks them, and
    its history records the reason and `merge` (or `unmerge`) as the API's do.
    Subclasses implement perform_service_merge, perform_service_unmerge and
    merge_preview."""

    actions = ["merge_into"]
    change_form_template = "admin/ledger/mergeable_change_form.html"

    def perform_service_merge(self, record, into) -> dict[str, Any]:
        raise NotImplementedError

    def perform_service_unmerge(self, record) -> dict[str, Any]:
        raise NotImplementedError

    def merge_preview(self, record, into) -> dict[str, Any]:
        raise NotImplementedError

    # The list ------------------------------------------------------------

    def get_list_display(self, request):
        return [*super().get_list_display(request), "merged_into_link"]

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), MergedFilter]

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if request.path.endswith("/autocomplete/") and request.GET.get("field_name") == (
            "merged_into"
        ):
            # The merge page's choice of target: records not merged themselves.
            queryset = queryset.filter(merged_into__isnull=True)
        return queryset, may_have_duplicates

    @admin.display(description="merged into", ordering="merged_into")
    def merged_into_link(self, record) -> str:
        if record.merged_into_id is None:
            return "—"
        url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[record.merged_into_id],
        )
        return format_html('<a href="{}">{}</a>', url, record.merged_into_id)

    # A merged record: read-only, with "merged into" and Unmerge ------------

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.merged_into_id is not None:
            fields.append("merged_into_display")
        return fields

    @admin.display(description="merged into")
    def merged_into_display(self, record) -> str:
        target = record.merged_into
        url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[target.pk],
        )
        return format_html('<a href="{}">{} (id {})</a>', url, target, target.pk)

    def has_change_permission(self, request, obj=None):
        # A merged record is changed through its target (the API answers 409).
        if obj is not None and obj.merged_into_id is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.merged_into_id is not None:
            return False
        return super().has_delete_permission(request, obj)

    def may_merge(self, request) -> bool:
        return super().has_change_permission(request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "may_unmerge": self.may_merge(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        unmerge = path(
            "<path:object_id>/unmerge/",
            self.admin_site.admin_view(self.unmerge_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_unmerge",
        )
        return [unmerge, *super().get_urls()]

    def unmerge_view(self, request, object_id):
        if not self.may_merge(request):
            raise PermissionDenied
        record = self.get_object(request, object_id)
        if record is None:
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, self.opts, object_id
            )
        change_url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[record.pk],
        )
        if record.merged_into_id is None:
            messages.error(request, f"{record} (id {record.pk}) is not merged.")
            return redirect(change_url)
        form = UnmergeForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                with transaction.atomic():
                    manager = self.model._default_manager
                    locked = manager.select_for_update().filter(pk=record.pk).first()
                    if locked is None:
                        raise MergeConflict("It was deleted meanwhile.")
                    with separate_context(
                        reason=form.cleaned_data["reason"],
                        unmerge={"merged": locked.pk, "into": locked.merged_into_id},
                    ):
                        done = self.perform_service_unmerge(locked)
            except (MergeConflict, IntegrityError) as exc:
                messages.error(
                    request, f"{record} (id {record.pk}) was not unmerged: {refusal(exc)}"
                )
            else:
                messages.success(
                    request,
                    f"{record} (id {record.pk}) is no longer merged into {done['into']}; "
                    f"moved back: {self.summary(done, undone=True) or 'nothing'}.",
                )
            return redirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Unmerge {record}",
            "opts": self.opts,
            "object": record,
            "form": form,
        }
        return TemplateResponse(request, "admin/ledger/unmerge_confirmation.html", context)

    # The action ------------------------------------------------------------

    def merge_form(self, data=None) -> MergeForm:
        form = MergeForm(data)
        form.fields["into"] = RecordChoiceField(
            queryset=self.model._default_manager.all(),
            label=f"Merge into this {self.opts.verbose_name}",
            help_text="Search by name, or give its id or slug. Records merged themselves "
            "are not offered.",
            widget=RecordAutocomplete(self.model._meta.get_field("merged_into"), self.admin_site),
        )
        form.order_fields(["into", "reason"])
        return form

    @admin.action(description="Merge into…", permissions=["change"])
    def merge_into(self, request, queryset):
        records = list(queryset.order_by("pk"))
        asked = "_preview" in request.POST or "_merge" in request.POST
        form = self.merge_form(request.POST if asked else None)
        previews = []
        if form.is_bound and form.is_valid():
            into = form.cleaned_data["into"]
            if "_merge" in request.POST and form.cleaned_data["previewed"] == into.pk:
                self.merge_records(request, records, into, form.cleaned_data["reason"])
                return None  # back to the list
            previews = [self.preview_rows(record, into) for record in records]
            # What the page shows is what the next press merges.
            form = self.merge_form({**request.POST.dict(), "into": into.pk, "previewed": into.pk})
            form.is_valid()
        context = {
            **self.admin_site.each_context(request),
            "title": f"Merge {self.opts.verbose_name_plural} into another",
            "opts": self.opts,
            "records": records,
            "form": form,
            "previews": previews,
            "media": self.media + form.media,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/ledger/merge_confirmation.html", context)

    def preview_rows(self, record, into) -> dict[str, Any]:
        """A record's preview as the page shows it: counts by relation."""
        preview = self.merge_preview(record, into)
        names = relation_names(self.model)
        relations = [
            {
                "name": names.get(key, key).replace("_", " "),
                "moved": len(entry["moved"]),
                "dropped": len(entry["dropped"]),
            }
            for key, entry in preview["moved"].items()
        ]
        return {"record": record, "into": into, "relations": relations, **preview}

    def merge_records(self, request, records, into, reason: str) -> None:
        """Merge each record into `into`, each in a transaction of its own."""
        for record in records:
            try:
                with (
                    separate_context(reason=reason, merge={"merged": record.pk, "into": into.pk}),
                    transaction.atomic(),
                ):
                    locked, target = lock_pair(self.model, record.pk, into.pk)
                    if locked is None or target is None:
                        raise MergeConflict("One of the two records was deleted meanwhile.")
                    done = self.perform_service_merge(locked, target)
            except (MergeConflict, IntegrityError) as exc:
                messages.error(request, f"{record} (id {record.pk}) was not merged: {refusal(exc)}")
            else:
                messages.success(
                    request,
                    f"{record} (id {record.pk}) merged into {into} (id {into.pk}); "
                    f"moved: {self.summary(done) or 'nothing'}.",
                )

    def summary(self, done: dict[str, Any], *, undone: bool = False) -> str:
        """What a merge moved (and dropped), by relation, in words; `undone`:
        what its unmerge moved back (and made again)."""
        names = relation_names(self.model)
        parts = []
        for key, entry in done["moved"].items():
            name = names.get(key, key).replace("_", " ")
            part = f"{len(entry['moved'])} {name}"
            if entry["dropped"]:
                dropped = "made again" if undone else "dropped: the target had the like"
                part += f" ({len(entry['dropped'])} {dropped})"
            parts.append(part)
        return ", ".join(parts)
