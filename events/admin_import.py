"""The admin page where curators import a document with its annotation.

It loads through the same call as `POST /api/v1/documents/` and `manage.py
seed` (events.documents.import_document), so actors and places are resolved
the same way everywhere. "Check" is a dry run that shows the report and
stores nothing; "Import" stores it all in one transaction, or nothing."""

import datetime
import io
from typing import Any

import pghistory
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_http_methods
from rest_framework import serializers
from rest_framework.exceptions import ParseError

from events.documents import HEADER_RE, Report, import_document
from events.serializers import DocumentWriteSerializer
from events.views import CanImportDocuments
from ledger.api.parsers import YAMLParser
from sources.models import Source

# The admin page of the record a matched declaration or an addition points at.
RECORD_PAGES = {"actors": "actors_actor_change", "places": "events_place_change"}


class DocumentImportForm(forms.Form):
    """A document's text and its annotation, each pasted or uploaded. An
    uploaded text may start with the `date YYYY-MM-DD` header of the fixture
    files, which gives its publication date."""

    text = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 100}),
        help_text="The document's full text, exactly as published.",
    )
    text_file = forms.FileField(
        required=False,
        label="or its text file",
        help_text="UTF-8 text. A first line “date YYYY-MM-DD”, as in the fixture files, "
        "gives the publication date and is not part of the text.",
    )
    published_on = forms.DateField(
        required=False,
        label="Published on",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Optional (YYYY-MM-DD).",
    )
    annotation = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 20, "cols": 100}),
        help_text="YAML (or JSON) in the annotation format of fixtures/README.md, starting "
        "with “format: event-ledger-annotation/1”.",
    )
    annotation_file = forms.FileField(required=False, label="or its annotation file")

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        text = self._pasted_or_uploaded("text", "text_file")
        if text is not None:
            self._clean_text(cleaned, text)
        raw = self._pasted_or_uploaded("annotation", "annotation_file")
        if raw is not None:
            cleaned["annotation_text"] = raw
            try:
                cleaned["annotation"] = _annotation(raw)
            except ValidationError as exc:
                uploaded = self.cleaned_data.get("annotation_file")
                self.add_error("annotation_file" if uploaded else "annotation", exc)
        return cleaned

    def _pasted_or_uploaded(self, name: str, file_name: str) -> str | None:
        """The text pasted in `name` or read from the file in `file_name`, one
        of the two; None (with the form's error) when neither or both."""
        pasted, upload = self.cleaned_data.get(name), self.cleaned_data.get(file_name)
        if pasted and upload:
            self.add_error(name, "Paste it or upload a file, not both.")
            return None
        if upload:
            try:
                return _read(upload)
            except ValidationError as exc:
                self.add_error(file_name, exc)
                return None
        if not pasted or not pasted.strip():
            if name not in self.errors and file_name not in self.errors:
                self.add_error(name, "Paste it here or upload a file.")
            return None
        # Browsers send a textarea's line breaks as CR LF, whatever the text had.
        return pasted.replace("\r\n", "\n")

    def _clean_text(self, cleaned: dict[str, Any], text: str) -> None:
        if self.cleaned_data.get("text_file"):
            match = HEADER_RE.match(text)
            if match:
                try:
                    dated = datetime.date.fromisoformat(match.group(1))
                except ValueError:
                    self.add_error("text_file", f"Invalid date {match.group(1)!r} in its header.")
                    return
                given = cleaned.get("published_on")
                if given and given != dated:
                    self.add_error(
                        "published_on",
                        f"The file's header says {dated.isoformat()}; leave this empty "
                        "or give the same date.",
                    )
                    return
                cleaned["published_on"] = dated
                text = text[match.end() :]
        if not text.strip():
            self.add_error(
                "text_file" if self.cleaned_data.get("text_file") else "text", "No text."
            )
            return
        cleaned["text"] = text


def _read(upload: UploadedFile) -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if upload.size is not None and upload.size > limit:
        raise ValidationError(f"At most {limit:,} bytes; this file has {upload.size:,}.")
    try:
        # utf-8-sig: a byte order mark (Windows editors write one) is not text.
        raw = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The file is not UTF-8 text.") from None
    if "\x00" in raw:
        raise ValidationError("The file holds NUL characters: it is not a text file.")
    return raw


def _annotation(raw: str) -> dict[str, Any]:
    """The annotation, read by the documents endpoint's own rules: its YAML
    parser (no aliases, bounded depth, no NUL), its format line and its limits."""
    try:
        data = YAMLParser().parse(io.BytesIO(raw.encode()), parser_context={"encoding": "utf-8"})
        return DocumentWriteSerializer().validate_annotation(data)
    except ParseError as exc:
        raise ValidationError(str(exc.detail)) from None
    except serializers.ValidationError as exc:
        details = exc.detail if isinstance(exc.detail, list) else [exc.detail]
        raise ValidationError([str(detail) for detail in details]) from None


def can_import_documents(request: HttpRequest) -> bool:
    """Importing takes a curator's permissions, as on the documents endpoint."""
    return request.user.has_perms(CanImportDocuments.required)


@require_http_methods(["GET", "POST"])
def document_import_view(request: HttpRequest, admin_site: admin.AdminSite) -> HttpResponse:
    if not can_import_documents(request):
        raise PermissionDenied
    form = DocumentImportForm()
    report, dry_run = None, True
    if request.method == "POST":
        form = DocumentImportForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            dry_run = request.POST.get("action") != "import"
            with transaction.atomic():
                pghistory.context(via="import")
                report = import_document(
                    text=data["text"],
                    annotation=data["annotation"],
                    published_on=data["published_on"],
                    dry_run=dry_run,
                )
            if report.created and report.source is not None:
                return _imported(request, report.source, report, admin_site.name)
            # Shown again in the text areas: a file chosen is not sent twice.
            form = DocumentImportForm(
                initial={
                    "text": data["text"],
                    "published_on": data["published_on"],
                    "annotation": data["annotation_text"],
                }
            )
    context = {
        **admin_site.each_context(request),
        "title": "Import a document",
        "opts": Source._meta,
        "form": form,
        "dry_run": dry_run,
        "report": _report_rows(report, admin_site.name) if report is not None else None,
    }
    return TemplateResponse(request, "admin/events/document_import.html", context)


def _imported(request: HttpRequest, source: Source, report: Report, site: str) -> HttpResponse:
    created = ", ".join(f"{section}: {count}" for section, count in report.counts.items() if count)
    messages.success(
        request,
        f"The document “{source}” was imported (created: {created or 'the source only'}); "
        f"{len(report.matched)} declaration(s) matched stored records.",
    )
    return redirect(reverse(f"{site}:sources_source_change", args=[source.pk]))


def _report_rows(report: Report, site: str) -> dict[str, Any]:
    def page(pointer: str, pk: int) -> str | None:
        name = RECORD_PAGES.get(pointer.split("/")[1] if pointer.count("/") else "")
        return reverse(f"{site}:{name}", args=[pk]) if name else None

    return {
        "counts": report.counts,
        "matched": [
            {**match, "url": page(match["pointer"], match["id"])} for match in report.matched
        ],
        "additions": [
            {**addition, "url": page(addition["pointer"], addition["id"])}
            for addition in report.additions
        ],
        "suggestions": report.suggestions,
        "problems": report.problems,
    }


def urls(admin_site: admin.AdminSite) -> list[URLPattern]:
    """The page's address, for an admin class's get_urls()."""

    def view(request: HttpRequest) -> HttpResponse:
        return document_import_view(request, admin_site)

    return [
        path(
            "import-document/",
            admin_site.admin_view(view),
            name="events_document_import",
        )
    ]
