"""Replay three abusive clients against a running service, while /healthz is
polled every 0.2 s, and report whether each was stopped and how long /healthz
took at worst.

1. Throttle bypass: anonymous list requests, each with a new X-Forwarded-For,
   until one is refused with 429 (stopped) or XFF_REQUESTS have passed (not
   stopped, or the anonymous rate is above XFF_REQUESTS a minute).
2. Login brute force: wrong passwords for one (made-up) user name on the
   admin's login form until one is refused with 429 (stopped).
3. Slow clients: SLOW_SOCKETS connections that send half a request (headers
   cut short, or a body cut short) and then wait HOLD seconds.

    .venv/bin/python bench/abuse_clients.py http://127.0.0.1:8000
    .venv/bin/python bench/abuse_clients.py http://127.0.0.1:8000 --slow-sockets 4 --hold 20 --json

Against gunicorn alone, each slow client holds a sync worker until it gives
up (2 workers: /healthz stalled for the whole hold). Threaded workers
(`--worker-class gthread --threads 4`, the image's default) need workers x
threads of them, and more workers or threads raise that number; only a
buffering proxy in front (deploy/nginx.conf, docs/production.md) drops them.
Without CACHE_URL each server process keeps its own throttle counts, so the
spoof is refused after up to (processes x THROTTLE_ANON) requests.

Before anything is measured, 8 concurrent requests warm the server processes
up. Exit status 1 when /healthz took over --max-healthz seconds (default 1) at
any point, or when an attack was not stopped. Standard library only; `run(base_url)`
returns the report as a dict.
"""

import argparse
import json
import re
import secrets
import socket
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HEALTH_INTERVAL = 0.2  # seconds between two /healthz requests
HEALTH_TIMEOUT = 60.0  # a /healthz request waits this long at most
AXES_LOCKOUT_TEXT = "too many login attempts"


class HealthPoller(threading.Thread):
    """GET /healthz every HEALTH_INTERVAL seconds, one at a time, noting each
    answer's latency (a stalled request counts for as long as it stalls) and
    the phase of the replay it fell in."""

    def __init__(self, base_url: str):
        super().__init__(daemon=True)
        self.url = base_url + "/healthz"
        self.phase = "baseline"
        self.samples: list[tuple[str, float, int | str]] = []  # phase, seconds, status
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            phase, started = self.phase, time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=HEALTH_TIMEOUT) as response:
                    response.read()
                    status: int | str = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError as error:
                status = type(error).__name__
            self.samples.append((phase, time.monotonic() - started, status))
            self.stop.wait(HEALTH_INTERVAL)

    def summary(self) -> dict:
        def stats(samples):
            latencies = [seconds for _, seconds, _ in samples]
            if not latencies:
                return {"requests": 0}
            return {
                "requests": len(latencies),
                "worst_s": round(max(latencies), 3),
                "median_s": round(statistics.median(latencies), 3),
                "not_200": sum(1 for *_, status in samples if status != 200),
            }

        phases = dict.fromkeys(phase for phase, _, _ in self.samples)
        return {
            **stats(self.samples),
            "by_phase": {
                phase: stats([s for s in self.samples if s[0] == phase]) for phase in phases
            },
        }


def xff_spoof(base_url: str, max_requests: int) -> dict:
    """Anonymous list requests, each with a new X-Forwarded-For value."""
    url = base_url + "/api/v1/events/?page_size=1"
    started = time.monotonic()
    statuses: dict[str, int] = {}
    for n in range(1, max_requests + 1):
        forwarded = f"198.18.{n // 256 % 256}.{n % 256}"
        request = urllib.request.Request(url, headers={"X-Forwarded-For": forwarded})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if status == 429:
            return {
                "stopped": True,
                "refused_at_request": n,
                "statuses": statuses,
                "seconds": round(time.monotonic() - started, 2),
            }
    return {
        "stopped": False,
        "refused_at_request": None,
        "statuses": statuses,
        "seconds": round(time.monotonic() - started, 2),
        "note": f"no 429 in {max_requests} requests with distinct X-Forwarded-For: the "
        "header is trusted, or the anonymous rate is above that many a minute",
    }


def login_brute_force(base_url: str, admin_path: str, attempts: int) -> dict:
    """Wrong passwords for one user name on the admin's login form."""
    login_url = urllib.parse.urljoin(base_url + "/", admin_path.strip("/") + "/login/")
    try:
        with urllib.request.urlopen(login_url, timeout=30) as response:
            page = response.read().decode()
            cookies = response.headers.get_all("Set-Cookie") or []
    except urllib.error.HTTPError as error:
        if error.code == 429:  # a rate limit on the login page itself, before any guess
            return {
                "stopped": True,
                "refused_from_attempt": 0,
                "refused_by": "proxy" if error.headers.get("Server") == "nginx" else "service",
                "statuses": [429],
                "median_s_per_checked_attempt": None,
                "median_s_per_refused_attempt": None,
            }
        return {"stopped": False, "error": f"the login page {login_url} answered {error.code}"}
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    # Sent back as it came, even when marked Secure over plain HTTP: a script does.
    csrf_cookie = next((c.split(";")[0] for c in cookies if c.startswith("csrftoken=")), None)
    if not match or not csrf_cookie:
        return {"stopped": False, "error": f"no login form with a CSRF cookie at {login_url}"}
    username = f"abuse-{secrets.token_hex(4)}"  # a fresh name: earlier runs locked theirs
    answers = []
    for n in range(1, attempts + 1):
        form = {
            "csrfmiddlewaretoken": match.group(1),
            "username": username,
            "password": f"guess-{n}",
            "next": "/" + admin_path.strip("/") + "/",
        }
        request = urllib.request.Request(
            login_url,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Referer": login_url, "Cookie": csrf_cookie},
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, body = response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode(errors="replace")
        seconds = time.monotonic() - started
        if status == 429:
            by = "service (django-axes)" if AXES_LOCKOUT_TEXT in body.lower() else "proxy"
        else:
            by = None
        answers.append({"attempt": n, "status": status, "seconds": round(seconds, 3), "by": by})
    refused = [a for a in answers if a["status"] == 429]
    checked = [a["seconds"] for a in answers if a["status"] == 200]
    return {
        "stopped": bool(refused),
        "username": username,
        "refused_from_attempt": refused[0]["attempt"] if refused else None,
        "refused_by": refused[0]["by"] if refused else None,
        "statuses": [a["status"] for a in answers],
        "median_s_per_checked_attempt": round(statistics.median(checked), 3) if checked else None,
        "median_s_per_refused_attempt": (
            round(statistics.median(a["seconds"] for a in refused), 3) if refused else None
        ),
    }


def slow_clients(base_url: str, sockets: int, hold: float) -> dict:
    """SLOW_SOCKETS connections that send half a request and wait: even ones
    stop inside the headers (slowloris), odd ones inside a form body the
    service reads before answering (the CSRF check reads the login form)."""
    parsed = urllib.parse.urlsplit(base_url)
    host, port = parsed.hostname, parsed.port or 80
    host_header = parsed.netloc
    half_headers = (
        f"GET /api/v1/events/ HTTP/1.1\r\nHost: {host_header}\r\n"
        "User-Agent: abuse-bench\r\nX-Wait: "
    ).encode()
    cookie = "csrftoken=" + "a" * 32
    half_body = (
        f"POST /admin/login/ HTTP/1.1\r\nHost: {host_header}\r\nCookie: {cookie}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n"
        "username=abuse&password="
    ).encode()
    results: list[dict] = []

    def one(kind: str, payload: bytes) -> None:
        started = time.monotonic()
        result = {"kind": kind, "closed_by_server_after_s": None, "answer": None}
        try:
            with socket.create_connection((host, port), timeout=10) as sock:
                sock.sendall(payload)
                sock.settimeout(hold)
                try:
                    data = sock.recv(4096)
                    result["closed_by_server_after_s"] = round(time.monotonic() - started, 2)
                    if data:
                        result["answer"] = data.split(b"\r\n", 1)[0].decode(errors="replace")
                except TimeoutError:
                    pass  # still open when the hold ended: this end closes it
                except OSError as error:  # reset by the server
                    result["closed_by_server_after_s"] = round(time.monotonic() - started, 2)
                    result["answer"] = type(error).__name__
        except OSError as error:
            result["answer"] = f"connect failed: {type(error).__name__}"
        results.append(result)

    threads = [
        threading.Thread(
            target=one,
            args=("half headers", half_headers) if i % 2 == 0 else ("half body", half_body),
            daemon=True,
        )
        for i in range(sockets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(hold + 15)
    return {"sockets": sockets, "hold_s": hold, "connections": results}


def warm_up(base_url: str, connections: int = 8) -> None:
    """A few concurrent requests first, so that every server process has loaded
    the API before anything is measured (a cold one takes most of a second)."""

    def get(path: str) -> None:
        try:
            with urllib.request.urlopen(base_url + path, timeout=30) as response:
                response.read()
        except OSError:
            pass

    for path in ("/healthz", "/api/v1/events/?page_size=1"):
        threads = [threading.Thread(target=get, args=(path,)) for _ in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def run(
    base_url: str,
    *,
    admin_path: str = "/admin/",
    xff_requests: int = 400,
    login_attempts: int = 8,
    slow_sockets: int = 3,
    hold: float = 20.0,
    max_healthz: float = 1.0,
) -> dict:
    """Replay the three attacks in turn while polling /healthz; the report."""
    base_url = base_url.rstrip("/")
    warm_up(base_url)
    poller = HealthPoller(base_url)
    poller.start()
    try:
        time.sleep(1.0)
        poller.phase = "xff_spoof"
        spoof = xff_spoof(base_url, xff_requests)
        poller.phase = "login_brute_force"
        brute = login_brute_force(base_url, admin_path, login_attempts)
        poller.phase = "slow_clients"
        slow = slow_clients(base_url, slow_sockets, hold)
        poller.phase = "after"
        time.sleep(1.0)
    finally:
        poller.stop.set()
        poller.join(HEALTH_TIMEOUT + 1)
    health = poller.summary()
    return {
        "base_url": base_url,
        "healthz": health,
        "healthz_ok": health.get("worst_s", float("inf")) <= max_healthz,
        "max_healthz_s": max_healthz,
        "xff_spoof": spoof,
        "login_brute_force": brute,
        "slow_clients": slow,
    }


def describe(report: dict) -> str:
    health, spoof, brute, slow = (
        report["healthz"],
        report["xff_spoof"],
        report["login_brute_force"],
        report["slow_clients"],
    )
    lines = [f"abuse replay against {report['base_url']}"]
    if spoof["stopped"]:
        lines.append(
            f"  X-Forwarded-For spoof: stopped (429 at request {spoof['refused_at_request']})"
        )
    else:
        lines.append(f"  X-Forwarded-For spoof: NOT stopped ({spoof['note']})")
    if brute.get("stopped"):
        lines.append(
            f"  login brute force:     stopped (429 from attempt {brute['refused_from_attempt']}, "
            f"by the {brute['refused_by']}; {brute['median_s_per_checked_attempt']} s per "
            f"checked attempt, {brute['median_s_per_refused_attempt']} s per refused one)"
        )
    else:
        lines.append(
            f"  login brute force:     NOT stopped ({brute.get('error') or brute['statuses']})"
        )
    closed = [c["closed_by_server_after_s"] for c in slow["connections"]]
    lines.append(
        f"  slow clients:          {slow['sockets']} half requests held {slow['hold_s']} s; "
        f"closed by the server after: {closed} (None: still open)"
    )
    lines.append(f"  /healthz every {HEALTH_INTERVAL} s: worst latency per phase:")
    for phase, stats in health["by_phase"].items():
        lines.append(
            f"    {phase:18} {stats['worst_s']:7.3f} s worst, {stats['median_s']:.3f} s median, "
            f"{stats['requests']} requests, {stats['not_200']} not 200"
        )
    verdict = "ok" if report["healthz_ok"] else "TOO SLOW"
    limit = report["max_healthz_s"]
    lines.append(f"  /healthz worst: {health.get('worst_s')} s ({verdict}; limit {limit} s)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--admin-path", default="/admin/", help="where ADMIN_URL puts the admin")
    parser.add_argument("--xff-requests", type=int, default=400)
    parser.add_argument("--login-attempts", type=int, default=8)
    parser.add_argument("--slow-sockets", type=int, default=3)
    parser.add_argument("--hold", type=float, default=20.0, help="seconds the slow sockets wait")
    parser.add_argument("--max-healthz", type=float, default=1.0, help="seconds; over: exit 1")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = run(
        args.base_url,
        admin_path=args.admin_path,
        xff_requests=args.xff_requests,
        login_attempts=args.login_attempts,
        slow_sockets=args.slow_sockets,
        hold=args.hold,
        max_healthz=args.max_healthz,
    )
    print(json.dumps(report, indent=2) if args.json else describe(report))
    stopped = report["xff_spoof"]["stopped"] and report["login_brute_force"].get("stopped")
    return 0 if report["healthz_ok"] and stopped else 1


if __name__ == "__main__":
    sys.exit(main())
