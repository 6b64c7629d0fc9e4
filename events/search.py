"""Ranked search of the event list (`ordering=relevance`) and the snippets of
a search's matches.

Relevance is ts_rank, which reads each matching row's tsvector: no index
orders by it. Ranking every match of a frequent word (200,000 events on the
1,000,000-event benchmark) would cost seconds, so the list ranks the newest
SEARCH_RANK_CANDIDATES matches of each half of the search (by title and
summary, by evidence), which each half finds on the date index as the date
ordering does (docs/api.md, "Search"). For a word with fewer matches than
that, every match is ranked.
"""

import math
from collections.abc import Sequence

from events.filters import tsquery_sql
from events.representations import EventRow, fetch_rows
from ledger.api.inputs import MAX_ID
from ledger.models import SEARCH_CONFIG

# Matches ranked per half of a search, newest first.
SEARCH_RANK_CANDIDATES = 100

# The snippet: plain text, the matching words between « and » (a « or » of the
# text itself is shown as ‹ or ›, so the markers are the snippet's own).
SNIPPET_START, SNIPPET_STOP = "«", "»"
SNIPPET_OPTIONS = (
    f'StartSel="{SNIPPET_START}", StopSel="{SNIPPET_STOP}", MaxWords=30, MinWords=12, '
    'ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "'
)

# Each event's snippet (a column over `e` and `q.q`, the search's tsquery):
# the best matching of its evidence quotes (or, when none matches, its title
# and summary) cut to the match with ts_headline, the matching words marked.
SNIPPET_SQL = """ts_headline(%s::regconfig, translate(coalesce(
        (SELECT v.quote FROM events_evidence v
          WHERE v.event_id = e.id AND v.search_vector @@ q.q
          ORDER BY ts_rank(v.search_vector, q.q, 1) DESC, v.source_id, v.start, v.id
          LIMIT 1),
        concat_ws(' — ', e.title, nullif(e.summary, ''))), %s, %s), q.q, %s)"""
SNIPPET_PARAMS = (SEARCH_CONFIG, "«»", "‹›", SNIPPET_OPTIONS)

# An event's relevance: its title and summary (weighted 1, as ts_rank weighs
# the A weight) above the best of its evidence quotes (weighted 0.1, as the
# default weighs D: a tenth as much), each normalised by length (ts_rank's
# normalisation 1), as one float4. Both vectors are unweighted (D); the
# weights array {D, C, B, A} of the first ts_rank counts D as 1, which ranks as
# setweight(vector, 'A') would without copying the vector.
RANK_SQL = """(ts_rank('{1,1,1,1}', e.search_vector, q.q, 1)
    + coalesce((SELECT max(ts_rank(v.search_vector, q.q, 1)) FROM events_evidence v
                 WHERE v.event_id = e.id AND v.search_vector @@ q.q), 0))::real"""


def ranked_rows(
    request,
    text: str,
    candidates: Sequence[tuple[str, Sequence]],
    position: list | None,
    size: int,
    *,
    with_snippets: bool = True,
) -> list[EventRow]:
    """A page of the events `candidates` select (SQL selecting ids, with
    parameters), best match of `text` first, then by id descending, after
    `position` ([rank, id] of the previous page's last row), one row longer
    than `size`: in one statement, the rows of `fetch_rows` each with its
    `extra` (rank, snippet or None). Run it without parallel workers
    (events.views.search_time_limit's `serial`)."""
    tsquery, query_params = tsquery_sql(text)
    union = " UNION ".join(f"SELECT c.id FROM ({sql}) c" for sql, _ in candidates)
    params: list = [*query_params, *(p for _, sql_params in candidates for p in sql_params)]
    after = ""
    if position is not None:
        after = "WHERE (r.rank, r.id) < (%s::real, %s)"
        params.extend(position)
    prefix = (
        f"WITH q AS MATERIALIZED (SELECT {tsquery} AS q), r AS MATERIALIZED ("
        f"SELECT r.id, r.rank FROM (SELECT e.id, {RANK_SQL} AS rank FROM events_event e, q "
        f"WHERE e.id IN ({union})) r {after} ORDER BY r.rank DESC, r.id DESC LIMIT %s) "
    )
    params.append(size + 1)
    snippet = SNIPPET_SQL if with_snippets else "NULL"
    return fetch_rows(
        request,
        "true",
        (),
        "r.rank DESC, e.id DESC",
        extra=[("r.rank", ()), (snippet, SNIPPET_PARAMS if with_snippets else ())],
        joins=" JOIN r ON r.id = e.id CROSS JOIN q",
        prefix=(prefix, params),
    )


def rank_position(raw: list) -> list | None:
    """A relevance cursor's [rank, id] as the query compares them, or None
    when it is not one a `next` link could hold."""
    rank, pk = raw
    if type(rank) not in (int, float) or not math.isfinite(rank) or rank < 0:
        return None
    if type(pk) is not int or not 1 <= pk <= MAX_ID:
        return None
    return [float(rank), pk]


def snippet_query(text: str) -> dict:
    """The snippets of a search `text` as `fetch_rows` arguments: a WITH
    clause (`q`, the tsquery, computed once), its join and the snippet column
    (`extra`), which PostgreSQL computes for the page's rows only, after the
    LIMIT (ts_headline parses the text it is given)."""
    tsquery, params = tsquery_sql(text)
    return {
        "prefix": (f"WITH q AS MATERIALIZED (SELECT {tsquery} AS q) ", params),
        "joins": " CROSS JOIN q",
        "extra": [(SNIPPET_SQL, SNIPPET_PARAMS)],
    }
