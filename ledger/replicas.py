"""The streaming replicas (`DATABASE_REPLICA_URLS`): which of them may serve a
read now, and how far each has replayed the primary's write-ahead log.

Every database alias named `replica_<n>` (config/settings.py makes one per
URL) is checked at most once per `DATABASE_REPLICA_CHECK_MS`, on the request
path of this process (no thread of its own): the primary's WAL position, then
how far the replica has replayed. A replica is in rotation when it answers
and has replayed, within `DATABASE_REPLICA_MAX_LAG_MS`, every position the
primary had reached; one that does not answer is rechecked after a back-off
(up to 30 s), so a replica that is gone costs no request a connection attempt
each time.

Lag is measured without comparing clocks of two machines: each check notes
the primary's position and when it was seen; the replica's lag is the age of
the oldest such position it has not yet replayed (0 when it has replayed
them all). It is a lower bound of the true lag, exact to one check interval.

A server that is not in recovery (the primary itself, named as a replica in
development) has replayed everything it has: it is always caught up.

Positions are byte offsets in the WAL (PostgreSQL's `pg_lsn`, written
`16/B374D848`); `parse_position` and `format_position` convert.
"""

import contextlib
import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

REPLICA_PREFIX = "replica_"
MAX_BACKOFF_S = 30.0
_POSITION_RE = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")

# How far a server has written (the primary) or replayed (a standby), in bytes.
_POSITION_SQL = (
    "SELECT (CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn(), '0/0') "
    "ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint"
)


def parse_position(raw: str) -> int:
    """A WAL position as PostgreSQL writes it (`16/B374D848`), as an integer;
    ValueError when it is not one."""
    match = _POSITION_RE.fullmatch(raw.strip())
    if not match:
        raise ValueError(raw)
    return (int(match[1], 16) << 32) | int(match[2], 16)


def format_position(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def position_of(alias: str) -> int:
    """How far the server behind `alias` has written (primary) or replayed (standby)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(_POSITION_SQL)
        return cursor.fetchone()[0]


@dataclass
class Replica:
    """What this process knows of one replica."""

    alias: str
    state: str = "unchecked"  # ok, lagging, down
    detail: str = ""
    replayed: int = 0  # a position it has replayed (it only grows)
    lag_ms: float | None = None
    checked_at: float = float("-inf")
    failures: int = 0
    # Positions the primary had reached, with when they were seen (monotonic).
    pending: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=256))

    @property
    def in_rotation(self) -> bool:
        return self.state == "ok"

    def due(self, now: float) -> bool:
        interval = settings.DATABASE_REPLICA_CHECK_MS / 1000
        if self.state == "down":
            interval = min(MAX_BACKOFF_S, max(interval, 1.0) * 2 ** (self.failures - 1))
        return now - self.checked_at >= interval

    def check(self, primary_position: int, now: float) -> None:
        """Read how far it has replayed; set its state and lag."""
        self.checked_at = now
        try:
            self.replayed = max(self.replayed, position_of(self.alias))
        except DatabaseError as exc:
            self.down(exc)
            return
        self.failures = 0
        if not self.pending or self.pending[-1][0] < primary_position:
            self.pending.append((primary_position, now))
        while self.pending and self.pending[0][0] <= self.replayed:
            self.pending.popleft()
        self.lag_ms = (now - self.pending[0][1]) * 1000 if self.pending else 0.0
        if self.lag_ms > settings.DATABASE_REPLICA_MAX_LAG_MS:
            self._set("lagging", f"{self.lag_ms:.0f} ms behind the primary")
        else:
            self._set("ok", "")

    def refresh(self) -> int:
        """Read again how far it has replayed (for a read that needs a newer
        position than the last check saw)."""
        try:
            self.replayed = max(self.replayed, position_of(self.alias))
        except DatabaseError as exc:
            self.down(exc)
        return self.replayed

    def down(self, exc: BaseException) -> None:
        """Out of rotation until a check finds it answering again."""
        self.checked_at = time.monotonic()
        self.failures += 1
        self.lag_ms = None
        self._set("down", str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        with contextlib.suppress(DatabaseError):
            connections[self.alias].close()

    def _set(self, state: str, detail: str) -> None:
        if state != self.state and (self.state, state) != ("unchecked", "ok"):
            log = logger.info if state == "ok" else logger.warning
            log("Database replica %s: %s%s", self.alias, state, f" ({detail})" if detail else "")
        self.state, self.detail = state, detail

    def report(self) -> dict:
        report: dict = {"state": self.state}
        if self.lag_ms is not None:
            report["lag_ms"] = round(self.lag_ms)
        if self.detail:
            report["detail"] = self.detail
        return report


class Pool:
    """The replicas of this process, checked when due and chosen in turn."""

    def __init__(self, aliases: list[str]):
        self.replicas = [Replica(alias) for alias in aliases]
        self._turn = 0
        self._checking = threading.Lock()

    def check(self, *, force: bool = False) -> None:
        """Check the replicas that are due (all of them with `force`). A thread
        that finds another checking goes on with what is known."""
        now = time.monotonic()
        due = [replica for replica in self.replicas if force or replica.due(now)]
        if not due or not self._checking.acquire(blocking=force):
            return
        try:
            try:
                primary = position_of(DEFAULT_DB_ALIAS)
            except DatabaseError:
                return  # the primary is away: the request meets that on its own
            for replica in due:
                replica.check(primary, now)
        finally:
            self._checking.release()

    def choose(self, position: int | None) -> str | None:
        """A replica in rotation that has replayed `position` (when given), in
        turn; None when none may serve (the primary then does)."""
        self.check()
        ready = [r for r in self.replicas if r.in_rotation]
        if position is not None:
            caught_up = [r for r in ready if r.replayed >= position]
            if not caught_up:
                # The last check is older than the write: ask once, never wait.
                caught_up = [r for r in ready[:1] if r.refresh() >= position]
            ready = caught_up
        if not ready:
            return None
        self._turn += 1
        return ready[self._turn % len(ready)].alias

    def get(self, alias: str) -> Replica:
        return next(replica for replica in self.replicas if replica.alias == alias)


_pool: Pool | None = None


def pool() -> Pool:
    """This process's replicas, from the database settings."""
    global _pool
    if _pool is None:
        _pool = Pool(sorted(alias for alias in settings.DATABASES if is_replica(alias)))
    return _pool


def is_replica(alias: str) -> bool:
    return alias.startswith(REPLICA_PREFIX)
