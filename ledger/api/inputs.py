"""How values are written in queries and bodies: dates, ids, slugs, page sizes."""

import calendar
import datetime
import re

from ledger.api.errors import InvalidQuery

_DATE_PARTS = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def date_from_iso(text: str) -> datetime.date:
    """A date written YYYY-MM-DD, the only form the API takes. The ValueError
    says what is wrong: the form, or which part cannot exist ("February 2023
    has no day 30"), so that a client does not hunt for a format problem."""
    match = _DATE_PARTS.fullmatch(text)
    if not match:
        raise ValueError("Use the format YYYY-MM-DD, e.g. 2023-11-09.")
    year, month, day = (int(part) for part in match.groups())
    if year == 0:
        raise ValueError("Not a valid date: there is no year 0.")
    if not 1 <= month <= 12:
        raise ValueError(f"Not a valid date: there is no month {month}.")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise ValueError(
            f"Not a valid date: {_MONTH_NAMES[month - 1]} {year} has no day {day} "
            f"(it has {last} days)."
        )
    return datetime.date(year, month, day)


# Ids and page sizes -----------------------------------------------------------

MAX_ID = 2**63 - 1  # ids are bigint
ID_TEXT = re.compile(r"[0-9]{1,19}")  # an id as written in a query or a body

# A slug as stored (Django's SlugField, at most 100 characters). Digits alone
# are an id, never a slug: the models refuse such slugs (ledger.models).
SLUG_MAX_LENGTH = 100
SLUG_TEXT = re.compile(rf"[-a-zA-Z0-9_]{{1,{SLUG_MAX_LENGTH}}}")


def id_or_slug(text: str) -> int | str | None:
    """`text` read as a reference: an id (whole number, within the bigint
    range) when it is digits only, else a slug when it has a slug's form, else
    None. Whether the record exists is for the caller to ask."""
    if ID_TEXT.fullmatch(text):
        return int(text) if int(text) <= MAX_ID else None
    if text.isdigit() or not SLUG_TEXT.fullmatch(text):
        return None
    return text


def page_size_from(raw: str | None, default: int, maximum: int) -> int:
    """The `page_size` parameter of any paginated answer: 1 to `maximum`."""
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise InvalidQuery({"page_size": [f"Must be a whole number from 1 to {maximum}."]})
    return int(raw)
