"""Replay the search and export attacks against a running service while
watching /healthz.

    .venv/bin/python bench/abuse_search_export.py http://127.0.0.1:8000 [--token KEY]

1. Search as a weapon: three concurrent event-list requests whose `q` is 277
   rare words joined by OR (a 3.6 KB URL). Before the search bounds, each ran
   to the 15 s statement timeout and three at once left /healthz unanswered.
   Refused: every answer a 400 (or a 429). Bounded: every answer in under
   `SEARCH_BOUND_S`.
2. Exports without limits: three clients open an unfiltered CSV export (with
   the token, when given, so that the service would stream it whole) and never
   read it, for `hold` seconds (EXPORT_STALL_TIMEOUT_MS is 30 s by default).
   Bounded: each is refused (403, 429) or dropped by the service before the
   hold ends (the connection closed, the file cut short).

All along, /healthz is asked every 0.2 s. The exit status is 1 when one of
those answers took over 1 s (or never came).

`run(base_url, token)` returns the findings as a dict; `make abuse` calls it.
Use the service's own data: the export attack needs more data than the
sockets' buffers hold (a few MB, some thousands of events) to mean anything,
and `bounded` says so when the exports finished on their own.
"""

import argparse
import contextlib
import json
import random
import socket
import string
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HEALTH_INTERVAL_S = 0.2
HEALTH_LIMIT_S = 1.0
HEALTH_TIMEOUT_S = 20.0
SEARCH_BOUND_S = 5.0  # the search timeout (3 s) and the answer around it
CLIENTS = 3


def weapon_query(words: int = 277, seed: int = 277) -> str:
    """Rare (made-up) words joined by OR: the probe's search."""
    rng = random.Random(seed)
    return " OR ".join(
        "".join(rng.choice(string.ascii_lowercase) for _ in range(8)) for _ in range(words)
    )


class HealthWatch:
    """Asks /healthz every HEALTH_INTERVAL_S in a thread of its own and keeps
    each answer's time; an answer that never comes counts as HEALTH_TIMEOUT_S."""

    def __init__(self, base_url: str):
        self.url = f"{base_url}/healthz"
        self.samples: list[tuple[float, float, bool]] = []  # (when, seconds, ok)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "HealthWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()

    def _watch(self) -> None:
        while not self.stopped.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=HEALTH_TIMEOUT_S) as response:
                    ok = response.status == 200
                    response.read()
                seconds = time.monotonic() - started
            except (OSError, urllib.error.URLError):
                ok, seconds = False, max(time.monotonic() - started, HEALTH_TIMEOUT_S)
            self.samples.append((started, seconds, ok))
            self.stopped.wait(max(0.0, HEALTH_INTERVAL_S - (time.monotonic() - started)))

    def summary(self, since: float = 0.0, until: float = float("inf")) -> dict:
        chosen = [(s, ok) for when, s, ok in self.samples if since <= when <= until]
        return {
            "polls": len(chosen),
            "worst_s": round(max((s for s, _ in chosen), default=0.0), 3),
            "failed": sum(1 for _, ok in chosen if not ok),
        }


def _get(url: str, headers: dict, timeout: float = 60.0) -> dict:
    started = time.monotonic()
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read(2000)
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read(2000)
    except OSError as error:
        status, body = None, str(error).encode()
    kind = None
    with contextlib.suppress(ValueError, AttributeError):
        kind = json.loads(body).get("type")
    return {"status": status, "seconds": round(time.monotonic() - started, 3), "type": kind}


def search_attack(base_url: str, headers: dict) -> dict:
    query = urllib.parse.urlencode({"q": weapon_query()})
    url = f"{base_url}/api/v1/events/?{query}"
    answers: list[dict] = [{} for _ in range(CLIENTS)]

    def client(number: int) -> None:
        answers[number] = _get(url, headers)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "url_bytes": len(url),
        "answers": answers,
        "refused": all(a["status"] in (400, 429) for a in answers),
        "bounded": all(a["status"] is not None and a["seconds"] < SEARCH_BOUND_S for a in answers),
    }


def _open_silent(base_url: str, path: str, headers: dict) -> socket.socket:
    """A request whose answer is read no further than its status line."""
    parsed = urllib.parse.urlsplit(base_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
    sock.connect((parsed.hostname, parsed.port or 80))
    lines = [f"GET {path} HTTP/1.1", f"Host: {parsed.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _status_line(sock: socket.socket, timeout: float = 30.0) -> tuple[int | None, bytes]:
    sock.settimeout(timeout)
    try:
        head = sock.recv(512)
    except OSError:
        return None, b""
    try:
        return int(head.split(b" ", 2)[1]), head
    except (IndexError, ValueError):
        return None, head


def _drain(sock: socket.socket, seconds: float = 3.0) -> tuple[int, bool, bool]:
    """Read what is left for up to `seconds`: (bytes, whether the service had
    closed the connection, whether the chunked body ended properly)."""
    received, tail, closed = 0, b"", False
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            data = sock.recv(1 << 16)
            if not data:
                closed = True
                break
            received += len(data)
            tail = (tail + data)[-16:]
    except OSError as error:
        closed = not isinstance(error, TimeoutError)
    return received, closed, tail.endswith(b"0\r\n\r\n")


def export_attack(base_url: str, headers: dict, hold: float) -> dict:
    path = "/api/v1/events/export?format=csv"
    socks = [_open_silent(base_url, path, headers) for _ in range(CLIENTS)]
    clients = []
    for sock in socks:
        status, head = _status_line(sock)
        clients.append({"status": status, "head_bytes": len(head)})
    time.sleep(hold)
    for sock, client in zip(socks, clients, strict=True):
        if client["status"] == 200:
            received, closed, complete = _drain(sock)
            client.update(dropped=closed and not complete, finished=complete, bytes=received)
        sock.close()
    streamed = [c for c in clients if c["status"] == 200]
    return {
        "hold_s": hold,
        "clients": clients,
        "refused": sum(1 for c in clients if c["status"] in (403, 429)),
        "dropped": sum(1 for c in streamed if c["dropped"]),
        # A stream that ended on its own was small enough for the sockets'
        # buffers: the attack needs more data to test anything.
        "finished_on_their_own": sum(1 for c in streamed if c["finished"]),
        "bounded": all(c["status"] in (403, 429) or c["dropped"] for c in clients),
    }


def run(base_url: str, token: str | None = None, *, hold: float = 35.0) -> dict:
    """Both attacks, one after the other, with /healthz watched throughout."""
    base_url = base_url.rstrip("/")
    headers = {"Authorization": f"Token {token}"} if token else {}
    for _ in range(6):  # warm every worker up: a cold start is not what is measured
        _get(f"{base_url}/healthz", {})
        _get(f"{base_url}/api/v1/events/?page_size=1", headers)
    with HealthWatch(base_url) as health:
        time.sleep(1)  # a baseline
        started = time.monotonic()
        search = search_attack(base_url, headers)
        search["healthz"] = health.summary(started, time.monotonic())
        started = time.monotonic()
        export = export_attack(base_url, headers, hold)
        export["healthz"] = health.summary(started, time.monotonic())
        time.sleep(1)
    overall = health.summary()
    return {
        "base_url": base_url,
        "signed_in": token is not None,
        "search": search,
        "export": export,
        "healthz": overall,
        "healthz_ok": overall["worst_s"] <= HEALTH_LIMIT_S and overall["failed"] == 0,
    }


def report(result: dict) -> str:
    search, export = result["search"], result["export"]
    statuses = ", ".join(
        f"{a['status']} in {a['seconds']} s"
        + (f" ({a['type'].rsplit(':', 1)[-1]})" if a["type"] else "")
        for a in search["answers"]
    )
    clients = ", ".join(
        f"{c['status']}"
        + (" dropped" if c.get("dropped") else "")
        + (" finished" if c.get("finished") else "")
        for c in export["clients"]
    )
    lines = [
        f"service: {result['base_url']} ({'with' if result['signed_in'] else 'without'} a token)",
        f"1. search, {CLIENTS} x a {search['url_bytes']:,}-byte URL of 277 ORed words: {statuses}",
        f"   refused: {search['refused']}; bounded (< {SEARCH_BOUND_S:g} s): {search['bounded']}; "
        f"/healthz worst {search['healthz']['worst_s']} s",
        f"2. export, {CLIENTS} clients that never read, held {export['hold_s']:g} s: {clients}",
        f"   refused: {export['refused']}, dropped by the service: {export['dropped']}, "
        f"finished on their own: {export['finished_on_their_own']}; bounded: {export['bounded']}; "
        f"/healthz worst {export['healthz']['worst_s']} s",
        f"/healthz: {result['healthz']['polls']} polls, worst {result['healthz']['worst_s']} s, "
        f"{result['healthz']['failed']} failed: {'ok' if result['healthz_ok'] else 'TOO SLOW'} "
        f"(limit {HEALTH_LIMIT_S:g} s)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="the service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", help="an API token: the exports are then a signed-in user's")
    parser.add_argument(
        "--hold", type=float, default=35.0, help="seconds the export clients hold on (default 35)"
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args(argv)
    result = run(args.base_url, args.token, hold=args.hold)
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0 if result["healthz_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
