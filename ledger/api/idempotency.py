"""`Idempotency-Key` for POST: a retried request with the same key and body gets
the first request's response, and creates nothing more.

- same key, same body: the stored response, with `Idempotent-Replayed: true`;
- same key, different body: 422;
- same key while the first request is still running: 409;
- keys are per user and expire after IDEMPOTENCY_KEY_TTL_HOURS (default 24).
"""

import datetime
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

from ledger.api.errors import InvalidHeader
from ledger.models import IdempotencyKey

HEADER = "Idempotency-Key"
KEY_RE = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces
REPLAYED_HEADERS = ("Location", "ETag")


class KeyInUse(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A request with this Idempotency-Key is still being processed; retry later."
    default_code = "idempotency-key-in-use"


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = (
        "This Idempotency-Key was used with a different request body; use a new key "
        "for a different request."
    )
    default_code = "idempotency-key-reused"


def ttl() -> datetime.timedelta:
    return datetime.timedelta(hours=getattr(settings, "IDEMPOTENCY_KEY_TTL_HOURS", 24))


def request_hash(request) -> str:
    canonical = json.dumps(request.data, sort_keys=True, cls=DjangoJSONEncoder)
    return hashlib.sha256(f"{request.path}\n{canonical}".encode()).hexdigest()


def run_once(request, run: Callable[[], Any], handle_exception: Callable[[Exception], Any]):
    """Answer a creating request once per `Idempotency-Key`: a retry with the
    same key and body gets the first answer again (problems included, as
    `handle_exception` renders them), without running `run` twice. Without the
    header, `run` just runs."""
    key = request.headers.get(HEADER)
    if key is None:
        return run()
    stored = claim(request, key)
    if stored is not None:
        return replay(stored)
    try:
        response = run()
    except Exception as exc:
        try:
            response = handle_exception(exc)  # a problem answer, stored like any other
        except Exception:
            release(request, key)
            raise
    record(request, key, response)
    return response


def claim(request, key: str) -> IdempotencyKey | None:
    """Claim `key` for this request. Returns None when the request is new and
    should run, or the completed record whose response is to be replayed."""
    if not KEY_RE.match(key):
        raise InvalidHeader({HEADER: ["Use 1 to 200 printable ASCII characters without spaces."]})
    digest = request_hash(request)
    now = timezone.now()
    IdempotencyKey.objects.filter(expires_at__lt=now).delete()
    try:
        with transaction.atomic():  # committed at once: concurrent duplicates see it
            IdempotencyKey.objects.create(
                user_id=request.user.pk,
                key=key,
                path=request.path,
                request_hash=digest,
                expires_at=now + ttl(),
            )
        return None
    except IntegrityError:
        pass
    existing = IdempotencyKey.objects.get(user_id=request.user.pk, key=key)
    if existing.request_hash != digest:
        raise KeyReused()
    if existing.state != IdempotencyKey.COMPLETED:
        raise KeyInUse()
    return existing


def record(request, key: str, response) -> None:
    """Store the response of the request that claimed `key`."""
    if isinstance(response, Response):
        body = json.dumps(response.data, cls=DjangoJSONEncoder)
        content_type = "application/json"
    else:
        body = response.content.decode()
        content_type = response["Content-Type"]
    IdempotencyKey.objects.filter(user_id=request.user.pk, key=key).update(
        state=IdempotencyKey.COMPLETED,
        response_status=response.status_code,
        response_body=body,
        response_content_type=content_type,
        response_headers={h: response[h] for h in REPLAYED_HEADERS if response.has_header(h)},
    )


def release(request, key: str) -> None:
    """Forget the claim of a request that failed unexpectedly, so it can be retried."""
    IdempotencyKey.objects.filter(
        user_id=request.user.pk, key=key, state=IdempotencyKey.IN_PROGRESS
    ).delete()


def replay(stored: IdempotencyKey):
    headers = {**stored.response_headers, "Idempotent-Replayed": "true"}
    if stored.response_content_type == "application/json":
        return Response(
            json.loads(stored.response_body), status=stored.response_status, headers=headers
        )
    response = HttpResponse(
        stored.response_body,
        status=stored.response_status,
        content_type=stored.response_content_type,
    )
    for name, value in headers.items():
        response[name] = value
    return response
