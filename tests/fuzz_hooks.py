"""Schemathesis hooks for `make fuzz`, and the cursor mutations that
tests/test_fuzz.py also sends on its own.

tests/test_fuzz.py runs `schemathesis run` with SCHEMATHESIS_HOOKS pointing at
this file, FUZZ_CURSORS at a JSON file of real cursors it took from the service
beforehand, and FUZZ_STATS at a file where the run's answers are tallied. The
hooks:

- send `If-Match: *` (any revision) instead of the generated value on about half
  of the writes that carry an If-Match, so that PUT, PATCH and DELETE get past
  the 412 precondition and really write;
- put a real cursor of a list (or of the change feed), or a mutation of one
  (`mutated_cursor`), in about half of the list requests, with the ordering it
  was issued for most of the time, so that pagination is fuzzed past its first
  decoding step;
- count the answers by method and status (FUZZ_STATS), so the test can tell
  that writes succeeded;
- drop failures on gunicorn's own 414 and 431 answers (request line or headers
  over its limits), which never reach the API.

Choices are drawn by Hypothesis where Schemathesis generates with Hypothesis
(fuzzing and stateful phases) and follow from a digest of the case in the
coverage and examples phases, so a run is replayed by its seed.
"""

import atexit
import base64
import collections
import hashlib
import json
import os
import string
from pathlib import Path

from hypothesis import strategies as st

WRITES = {"PUT", "PATCH", "DELETE"}
BASE64URL = string.ascii_letters + string.digits + "-_"

# Cursor mutations ------------------------------------------------------------


def encode_raw(raw: bytes) -> str:
    """A cursor as the service writes one: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode(value) -> str:
    # allow_nan: NaN and Infinity are what Python's json.loads accepts too.
    return encode_raw(json.dumps(value, separators=(",", ":")).encode())


def decode_raw(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


DATE_LIKE = [
    "2023-11-09",
    "2023-02-30",
    "0001-01-01",
    "0000-01-01",
    "9999-12-31",
    "10000-01-01",
    "2023-11-09T12:00:00Z",
    "2023-W45",
    "-2023-11-09",
    "",
    " ",
    "\x00",
    "a\x00b",
    "NaN",
    "1e9",
    "١٢",
]
NUMBERS = [0, -1, 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(NUMBERS),
    st.floats(),  # NaN and infinities included
    st.text(max_size=30),
    st.sampled_from(DATE_LIKE),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=10,
)

MUTATIONS = [
    "as issued",
    "truncated",
    "extended",
    "bit flipped",
    "character replaced",
    "padded",
    "standard base64",
    "value retyped",
    "element retyped",
    "key dropped",
    "key added",
    "reshaped",
    "any JSON",
    "deeply nested",
    "not JSON",
    "any text",
]


def mutated_cursor(real: str) -> st.SearchStrategy[str]:
    """`real` (a cursor the service issued) as issued or mutated: cut, extended,
    bit-flipped, re-padded, or decoded and re-encoded with values of the wrong
    type or range, keys missing or added, deep nesting, or not JSON at all."""
    return st.sampled_from(MUTATIONS).flatmap(lambda how: cursor_mutation(real, how))


@st.composite
def cursor_mutation(draw, real: str, how: str) -> str:
    """`real` mutated the way `how` (one of MUTATIONS) says."""
    raw = decode_raw(real)
    token = json.loads(raw)
    if how == "as issued":
        return real
    if how == "truncated":
        return real[: draw(st.integers(0, len(real) - 1))]
    if how == "extended":
        return real + draw(st.text(alphabet=BASE64URL + "=+/", min_size=1, max_size=8))
    if how == "bit flipped":
        index, bit = draw(st.integers(0, len(raw) - 1)), draw(st.integers(0, 7))
        return encode_raw(raw[:index] + bytes([raw[index] ^ (1 << bit)]) + raw[index + 1 :])
    if how == "character replaced":
        index = draw(st.integers(0, len(real) - 1))
        return real[:index] + draw(st.sampled_from(BASE64URL + "=+/.~%!*")) + real[index + 1 :]
    if how == "padded":
        return real + "=" * draw(st.integers(1, 3))
    if how == "standard base64":
        return base64.b64encode(raw).decode()
    # The token is an object ({"o": ordering, "v": [values]}) or an array: its
    # keys or indexes.
    if not isinstance(token, dict | list) or not token:
        return encode(draw(json_values))
    keys = sorted(token) if isinstance(token, dict) else list(range(len(token)))
    key = draw(st.sampled_from(keys))
    if how == "value retyped":
        return encode(_replaced(token, key, draw(json_values)))
    if how == "element retyped":
        value = token[key]
        if isinstance(value, list) and value:
            index = draw(st.integers(0, len(value) - 1))
            value = [*value[:index], draw(json_values), *value[index + 1 :]]
        else:
            value = draw(json_values)
        return encode(_replaced(token, key, value))
    if how == "key dropped":
        if isinstance(token, dict):
            return encode({k: v for k, v in token.items() if k != key})
        return encode(token[:key] + token[key + 1 :])
    if how == "key added":
        if isinstance(token, dict):
            return encode({**token, draw(st.text(max_size=4)): draw(json_values)})
        return encode([*token, draw(json_values)])
    if how == "reshaped":
        # An object's values as an array; an array's items as an object.
        values = [token[k] for k in keys]
        if isinstance(token, list):
            names = draw(st.permutations(["o", "v", "c", "i", *map(str, keys)]))
            return encode(dict(zip(names, values, strict=False)))
        return encode(values)
    if how == "any JSON":
        return encode(draw(json_values))
    if how == "deeply nested":
        # Deep enough to pass Python's recursion limit, short enough for
        # gunicorn's 4094-byte request line once base64-encoded.
        depth = draw(st.integers(100, 1400))
        nested = "[" * depth + "]" * depth
        if draw(st.booleans()):
            return encode_raw(nested.encode())
        text = json.dumps(_replaced(token, key, "NESTED"), separators=(",", ":"))
        return encode_raw(text.replace('"NESTED"', nested).encode())
    if how == "not JSON":
        return encode_raw(draw(st.binary(max_size=40)))
    return draw(st.text(max_size=40))


def _replaced(token: dict | list, key, value) -> dict | list:
    if isinstance(token, dict):
        return {**token, key: value}
    return [*token[:key], value, *token[key + 1 :]]


# Hooks -------------------------------------------------------------------------
# Registered only in the Schemathesis process (SCHEMATHESIS_HOOKS loads this
# file under its own module name); importing the module from the tests does not.

if __name__ != "tests.fuzz_hooks":
    import schemathesis
    from schemathesis.generation.meta import TestPhase

    # {"/api/v1/events/": {"parameter": "cursor", "cursors": [[ordering, cursor], ...]}, ...}
    LISTS = json.loads(Path(os.environ["FUZZ_CURSORS"]).read_text())
    STATS = collections.Counter()
    HASHED_PHASES = {TestPhase.COVERAGE, TestPhase.EXAMPLES}

    @atexit.register
    def _write_stats() -> None:
        if os.environ.get("FUZZ_STATS"):
            Path(os.environ["FUZZ_STATS"]).write_text(json.dumps(dict(STATS)))

    def _if_match_key(case) -> str | None:
        if case.method.upper() not in WRITES or not case.headers:
            return None
        return next((k for k in case.headers if k.lower() == "if-match"), None)

    def _list(case) -> dict | None:
        return LISTS.get(case.path) if case.method.upper() == "GET" else None

    def _apply(case, any_revision: bool, cursor: tuple | None):
        """The case with `If-Match: *` and/or a cursor (and its ordering) put in."""
        if any_revision:
            key = _if_match_key(case)
            case.headers = {**case.headers, key: "*"}
        if cursor is not None:
            parameter, value, ordering = cursor
            query = dict(case.query) if isinstance(case.query, dict) else {}
            query[parameter] = value
            if ordering is not None:
                query["ordering"] = ordering
            case.query = query
        return case

    def _phase(case):
        return case.meta.phase.name if case.meta is not None else None

    @schemathesis.hook
    def flatmap_case(context, case):
        if _phase(case) in HASHED_PHASES:
            return st.just(case)
        any_revision = st.booleans() if _if_match_key(case) else st.just(False)
        listing = _list(case)
        cursor = st.none()
        if listing is not None:
            cursor = st.none() | st.sampled_from(listing["cursors"]).flatmap(
                lambda pair: st.tuples(
                    st.just(listing["parameter"]),
                    mutated_cursor(pair[1]),
                    st.sampled_from([pair[0], pair[0], pair[0], None]),
                )
            )
        return st.tuples(any_revision, cursor).map(lambda choice: _apply(case, *choice))

    @schemathesis.hook
    def map_case(context, case):
        """Coverage and examples phases: the same choices, from a digest of the case."""
        if _phase(case) not in HASHED_PHASES:
            return case
        digest = hashlib.sha256(
            repr((case.method, case.path, case.query, dict(case.headers or {}), case.body)).encode()
        ).digest()
        any_revision = _if_match_key(case) is not None and digest[0] % 2 == 0
        cursor = None
        listing = _list(case)
        if listing is not None and digest[1] % 2 == 0:
            ordering, value = listing["cursors"][digest[2] % len(listing["cursors"])]
            cursor = (listing["parameter"], value, ordering)
        return _apply(case, any_revision, cursor)

    @schemathesis.hook
    def filter_failure(context, failure, case, response):
        """Every failure counts but those on gunicorn's own refusals of a request
        line or headers over its limits (414, 431, an HTML page): the API never
        saw those requests, and the schema describes the API."""
        return response is None or response.status_code not in (414, 431)

    @schemathesis.hook
    def after_call(context, case, response):
        STATS[f"{case.method.upper()} {response.status_code}"] += 1
