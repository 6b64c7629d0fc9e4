"""A PostgreSQL primary with a streaming standby, for the replica tests and the
replica measurements: the embedded server's own binaries (pgserver), each in
a data folder of its own under a temporary one, reached by Unix socket there.

The primary is a fresh cluster, not the shared embedded server: a base backup
copies a whole cluster, and this one holds only what the test puts in it.
"""

import contextlib
import os
import pwd
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.live import BIN, ROOT, call, free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs, without XDG_RUNTIME_DIR
    import pgserver
    from pgserver._commands import POSTGRES_BIN_PATH

DEADLINE = 60  # seconds: a wait for a state, never a timing assertion


@dataclass
class Standby:
    primary_dir: Path  # the primary's data folder and socket folder
    standby_dir: Path  # the standby's
    system_user: str | None = None  # the user the servers run as, when this is root

    def url(self, database: str = "") -> str:
        """The standby as DATABASE_REPLICA_URLS names it (no database: the primary's)."""
        return f"postgres://postgres@/{database}?host={self.standby_dir}"

    def primary(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=str(self.primary_dir), user="postgres", dbname=database, autocommit=True
        )

    def standby(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host=str(self.standby_dir), user="postgres", dbname=database, autocommit=True
        )

    def pause_replay(self) -> None:
        with self.standby() as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with self.standby() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def replayed(self) -> int:
        with self.standby() as conn:
            return conn.execute("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn").fetchone()[0]

    def start(self) -> None:
        self._pg_ctl(
            "-D",
            str(self.standby_dir),
            "-w",
            "-l",
            str(self.standby_dir / "standby.log"),
            "-o",
            f'-h "" -k {self.standby_dir}',
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-D", str(self.standby_dir), "-w", "-m", mode, "stop")

    def _pg_ctl(self, *args: str) -> None:
        self.run("pg_ctl", *args)

    def run(self, program: str, *args: str) -> None:
        """One of the server's programs, as the user the servers run as."""
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            user=self.system_user,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@contextlib.contextmanager
def primary_with_standby(folder: Path) -> Iterator[Standby]:
    """A new primary in `folder`/p and a standby of it in `folder`/s, streaming,
    until the block ends; then both stopped."""
    primary_dir, standby_dir = folder / "p", folder / "s"
    server = pgserver.get_server(primary_dir, cleanup_mode="stop")
    # PostgreSQL refuses to run as root: pgserver then runs it as a user of its own.
    system_user = server.system_user if os.geteuid() == 0 else None
    standby = Standby(primary_dir, standby_dir, system_user)
    try:
        standby_dir.mkdir(mode=0o700)
        if system_user:
            os.chown(
                standby_dir, pwd.getpwnam(system_user).pw_uid, pwd.getpwnam(system_user).pw_gid
            )
        standby.run(
            "pg_basebackup",
            *("-h", str(primary_dir), "-U", "postgres", "-D", str(standby_dir)),
            "-R",  # standby.signal, and primary_conninfo pointing at the primary
            *("-X", "stream", "-c", "fast"),
        )
        # The primary's socket lock and pgserver's own list came with the copy.
        for name in (".s.PGSQL.5432.lock", ".handle_pids.json"):
            (standby_dir / name).unlink(missing_ok=True)
        standby.start()
        try:
            yield standby
        finally:
            with contextlib.suppress(AssertionError):
                standby.stop("immediate")
    finally:
        server.cleanup()


@contextlib.contextmanager
def gunicorn(env: dict, log: Path) -> Iterator[str]:
    """The service on the prepared database until the block ends; its base URL."""
    port = free_port()
    bind = f"127.0.0.1:{port}"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "config.wsgi:application", "--workers", "1", "--bind", bind],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(base) or server.poll() is not None, "the server to start")
        assert server.poll() is None, log.read_text()
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(base: str) -> bool:
    try:
        return call("GET", f"{base}/healthz")[0] == 200
    except OSError:
        return False


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def caught_up(standby: Standby) -> None:
    """Wait until the standby has replayed all the primary has written."""
    with standby.primary() as conn:
        target = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
    wait_for(lambda: standby.replayed() >= target, "the standby to catch up")
