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

from django.db import connection

from events.filters import tsquery_sql
from ledger.api.inputs import MAX_ID
from ledger.models import SEARCH_CONFIG

# Matches ranked per half of a search, newest first.
SEARCH_RANK_CANDIDATES = 200

# The snippet: plain text, the matching words between « and » (a « or » of the
# text itself is shown as ‹ or ›, so the markers are the snippet's own).
SNIPPET_START, SNIPPET_STOP = "«", "»"
SNIPPET_OPTIONS = (
    f'StartSel="{SNIPPET_START}", StopSel="{SNIPPET_STOP}", MaxWords=30, MinWords=12, '
    'ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "'
)

# An event's relevance: its title and summary (weight A) above the best of its
# evidence quotes (weight D, a tenth as much), each normalised by length
# (ts_rank's normalisation 1), as one float4.
RANK_SQL = """(ts_rank(setweight(e.search_vector, 'A'), q.q, 1)
    + coalesce((SELECT max(ts_rank(v.search_vector, q.q, 1)) FROM events_evidence v
                 WHERE v.event_id = e.id AND v.search_vector @@ q.q), 0))::real"""


def ranked_page(
    text: str, candidates: Sequence[tuple[str, Sequence]], position: list | None, size: int
) -> list[tuple[int, float]]:
    """(id, rank) of a page of the events `candidates` select (SQL selecting
    ids, with parameters), best first, then by id descending, after `position`
    ([rank, id] of the previous page's last row), one row longer than `size`."""
    tsquery, query_params = tsquery_sql(text)
    union = " UNION ".join(f"SELECT c.id FROM ({sql}) c" for sql, _ in candidates)
    params: list = [*query_params, *(p for _, sql_params in candidates for p in sql_params)]
    after = ""
    if position is not None:
        after = "WHERE (r.rank, r.id) < (%s::real, %s)"
        params.extend(position)
    statement = (
        f"WITH q AS MATERIALIZED (SELECT {tsquery} AS q) "
        f"SELECT r.id, r.rank FROM (SELECT e.id, {RANK_SQL} AS rank FROM events_event e, q "
        f"WHERE e.id IN ({union})) r {after} ORDER BY r.rank DESC, r.id DESC LIMIT %s"
    )
    with connection.cursor() as cursor:
        # Parallel workers take longer to start than the few thousand rows the
        # candidates cost (about 70 ms against 5 on the benchmark).
        local = connection.in_atomic_block  # else SET LOCAL would outlive nothing
        if local:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(statement, [*params, size + 1])
        page = cursor.fetchall()
        if local:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = DEFAULT")
        return page


def rank_position(raw: list) -> list | None:
    """A relevance cursor's [rank, id] as the query compares them, or None
    when it is not one a `next` link could hold."""
    rank, pk = raw
    if type(rank) not in (int, float) or not math.isfinite(rank) or rank < 0:
        return None
    if type(pk) is not int or not 1 <= pk <= MAX_ID:
        return None
    return [float(rank), pk]


def snippets(text: str, ids: Sequence[int]) -> dict[int, str]:
    """Each event's snippet for the search `text`: the best matching of its
    evidence quotes (or, when none matches, its title and summary) cut to the
    match with ts_headline, the matching words marked. Only for `ids`, a page:
    ts_headline parses the text it is given."""
    if not ids:
        return {}
    tsquery, params = tsquery_sql(text)
    statement = f"""
        WITH q AS MATERIALIZED (SELECT {tsquery} AS q)
        SELECT e.id, ts_headline(%s::regconfig, translate(coalesce(
                 (SELECT v.quote FROM events_evidence v
                   WHERE v.event_id = e.id AND v.search_vector @@ q.q
                   ORDER BY ts_rank(v.search_vector, q.q, 1) DESC, v.source_id, v.start, v.id
                   LIMIT 1),
                 concat_ws(' — ', e.title, nullif(e.summary, ''))), %s, %s), q.q, %s)
          FROM events_event e, q WHERE e.id = ANY(%s)"""
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            [*params, SEARCH_CONFIG, "«»", "‹›", SNIPPET_OPTIONS, list(ids)],
        )
        return dict(cursor.fetchall())
