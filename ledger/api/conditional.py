"""ETags and preconditions: a record's ETag is its revision."""

import re

from rest_framework.exceptions import ErrorDetail

from ledger.api.errors import InvalidHeader

# Headers --------------------------------------------------------------------

ENTITY_TAG = re.compile(r'(W/)?"([^"]*)"')  # an ETag, weak or strong (RFC 9110)
_REVISION_TAG = re.compile(r"[1-9][0-9]{0,17}")


def check_if_match(header: str) -> None:
    """Refuse an If-Match that no record could ever match: it must be `*` or
    the quoted ETag of the record (its revision, `"3"`), or a comma-separated
    list of them. A weak tag (W/"3") is refused too: If-Match compares
    strongly (RFC 9110), so it could only ever fail, and the client would be
    told wrongly that the record changed."""
    header = header.strip()
    if header == "*":
        return
    items = [item.strip() for item in header.split(",")]
    for item in items:
        match = ENTITY_TAG.fullmatch(item)
        if match and match.group(1) and _REVISION_TAG.fullmatch(match.group(2)):
            problem = (
                f"{item} is a weak ETag; If-Match compares strongly, so it never matches. "
                f'Send the ETag as the record gives it, like "{match.group(2)}".'
            )
        elif match and (match.group(1) or not _REVISION_TAG.fullmatch(match.group(2))):
            problem = (
                f"{item} is not an ETag of this API: ETags are revisions in double "
                'quotes, like "3". Send the record\'s ETag, or * for any revision.'
            )
        elif not match:
            problem = (
                f'Send the record\'s ETag in double quotes, like "3" (or * for any '
                f"revision); {item or 'an empty item'} is not one."
            )
        else:
            continue
        raise InvalidHeader({"If-Match": [ErrorDetail(problem, code="invalid_etag")]})


def revision_etag(revision: int) -> str:
    return f'"{revision}"'


def etag_matches(header: str, revision: int, *, weak: bool) -> bool:
    """Does an If-Match (strong comparison) or If-None-Match (weak) header name
    this revision?"""
    if header.strip() == "*":
        return True
    for is_weak, tag in ENTITY_TAG.findall(header):
        if tag == str(revision) and (weak or not is_weak):
            return True
    return False
