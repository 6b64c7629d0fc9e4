"""How long a document dry run takes on a registry of 100,000 actors:
`POST /api/v1/documents/?dry_run=true` with a 4,000-character document and 50
annotated items (issue: under 200 ms).

Run on a database of its own, e.g.

    EMBEDDED_DB_NAME=eventledger_documents_bench .venv/bin/python bench/documents.py

It migrates that database and, the first time, loads the actors and places of
bench/mentions.py (100,000 actors with one alias each, 10,000 places). The
document is the seed article followed by a paragraph of six meetings between
stored actors, cut at 4,000 characters; its annotation is the seed's (44
items: 13 actors, 5 places, 4 affiliations, 14 events, 8 statements) and one
event per meeting, whose participants are stored actors named by slug: 50
items. The seed's actors are not stored there, so each one is resolved,
scored for suggestions and created, as a new document's are.

Requests go through Django's test client in this process, as a curator's
token, alternating ROUNDS times between the 50-item document and a reference
measured in the same run: the same text with a one-item annotation (an actor),
the endpoint's fixed cost. Reported per request: wall time (median, p90), CPU
of this process and of its PostgreSQL backend (from /proc), and queries.
"""

import copy
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "documents-bench-only")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

import django  # noqa: E402

django.setup()

import yaml  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from actors.models import Actor  # noqa: E402
from bench.mentions import ACTORS, load  # noqa: E402
from events.documents import read_document  # noqa: E402

SEED = ROOT / "fixtures" / "000_965ae081fd36cede.txt"
ROUNDS = int(os.environ.get("ROUNDS", "5"))
PER_ROUND = int(os.environ.get("PER_ROUND", "6"))
TICKS = os.sysconf("SC_CLK_TCK")


def document(rng: random.Random) -> dict:
    published_on, text = read_document(SEED)
    annotation = yaml.safe_load(SEED.with_suffix(".yaml").read_text(encoding="utf-8"))
    annotation = json.loads(json.dumps(annotation, default=str))  # as a JSON client sends it
    stored = list(
        Actor.objects.filter(slug__startswith="bench-").order_by("pk").values_list("slug", "name")
    )
    picked = rng.sample(stored[:5000], 120)
    sentences = []
    for number in range(6):
        (a_slug, a_name), (b_slug, b_name) = picked[2 * number], picked[2 * number + 1]
        met = f"{a_name} met {b_name} in talk number {number + 1}"
        sentences.append(
            f"{met} on Monday, to discuss transit, trade, borders, water and the long list "
            "of questions their governments had left open."
        )
        annotation["events"].append(
            {
                "type": "CONSULT",
                "title": f"Talk {number + 1}",
                "date": {"start": "2023-11-06", "end": "2023-11-06", "precision": "day"},
                "participants": [
                    {"actor": a_slug, "role": "participant"},
                    {"actor": b_slug, "role": "participant"},
                ],
                "evidence": [met],
            }
        )
    others = ", ".join(name for _, name in picked[12:])
    text = text + "\n\n" + " ".join(sentences) + " Also present were " + others
    text = text[:3999].rsplit(" ", 1)[0].rstrip(",") + "."  # 4,000 characters at most
    return {"text": text, "published_on": str(published_on), "annotation": annotation}


def cpu_ms(pid: int) -> float:
    """User and system CPU time of a process so far, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICKS


def main() -> int:
    call_command("migrate", verbosity=0)
    rng = random.Random(1)
    if Actor.objects.filter(slug__startswith="bench-").count() < ACTORS:
        started = time.perf_counter()
        load(rng)
        print(f"loaded in {time.perf_counter() - started:.1f} s")
    user, _ = User.objects.get_or_create(username="documents-bench", is_superuser=True)
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    full = document(rng)
    reference = copy.deepcopy(full)
    reference["annotation"] = {
        "format": full["annotation"]["format"],
        "actors": [full["annotation"]["actors"][0]],
    }
    items = sum(
        len(full["annotation"].get(section) or [])
        for section in ("actors", "places", "affiliations", "events", "statements")
    )
    print(
        f"{Actor.objects.count():,} actors; document of {len(full['text']):,} characters "
        f"and {items} items"
    )

    def dry_run(body: dict) -> None:
        response = client.post("/api/v1/documents/?dry_run=true", body, format="json")
        assert response.status_code == 200, response.content[:500]
        assert response.json()["valid"], response.json()["problems"][:3]

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    for body in (full, reference, full, reference):  # warm-up
        dry_run(body)
    measured: dict[str, dict[str, list[float]]] = {
        name: {"wall": [], "app": [], "db": []} for name in ("50 items", "reference")
    }
    for _ in range(ROUNDS):
        for name, body in (("50 items", full), ("reference", reference)):
            for _ in range(PER_ROUND):
                app, db = time.process_time(), cpu_ms(backend)
                started = time.perf_counter()
                dry_run(body)
                measured[name]["wall"].append((time.perf_counter() - started) * 1000)
                measured[name]["app"].append((time.process_time() - app) * 1000)
                measured[name]["db"].append(cpu_ms(backend) - db)
    queries = {}
    for name, body in (("50 items", full), ("reference", reference)):
        with CaptureQueriesContext(connection) as captured:
            dry_run(body)
        queries[name] = len(captured.captured_queries)
    print(f"{'':12} {'median':>9} {'p90':>9} {'app CPU':>9} {'db CPU':>9} {'queries':>8}")
    for name, figures in measured.items():
        wall = sorted(figures["wall"])
        print(
            f"{name:12} {statistics.median(wall):7.0f} ms {wall[int(len(wall) * 0.9)]:6.0f} ms "
            f"{statistics.median(figures['app']):6.0f} ms {statistics.mean(figures['db']):6.0f} ms "
            f"{queries[name]:8}"
        )
    ratio = statistics.median(measured["50 items"]["wall"]) / statistics.median(
        measured["reference"]["wall"]
    )
    print(f"ratio, 50 items to the reference: {ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
