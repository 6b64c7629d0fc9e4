"""No Docker engine runs here, so the container setup is checked by structure."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_db_service_is_postgres_16_with_healthcheck_and_named_volume():
    db = compose()["services"]["db"]
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"]


def test_app_waits_for_a_healthy_db_then_migrates_seeds_and_serves_with_gunicorn():
    app = compose()["services"]["app"]
    assert app["build"] == "."
    assert app["depends_on"]["db"] == {"condition": "service_healthy"}
    command = app["command"]
    assert command.index("migrate") < command.index("seed") < command.index("gunicorn")
    assert app["environment"]["DATABASE_URL"].startswith("postgres://")
    assert "@db:5432/" in app["environment"]["DATABASE_URL"]
    assert "SECRET_KEY" in app["environment"]


def test_dockerfile_installs_the_lock_file_and_runs_gunicorn():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert "collectstatic" in dockerfile
    assert '"gunicorn", "config.wsgi:application"' in dockerfile


def test_the_embedded_database_folder_is_git_ignored():
    assert ".data/" in (ROOT / ".gitignore").read_text().splitlines()


def test_check_deploy_passes_with_the_documented_production_environment():
    import os
    import subprocess
    import sys

    production = {}
    for line in (ROOT / "docs" / "production.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            production[name] = value
    env = {k: v for k, v in os.environ.items() if k not in production}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**env, **production},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
