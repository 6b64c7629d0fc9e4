"""The admin base of a revisioned resource: a reason with each save, edits
based on a stale revision refused, and the History page."""

import pghistory
from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from rest_framework.serializers import BaseSerializer

from ledger.history import has_history, with_representations


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
