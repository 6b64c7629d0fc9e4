"""No Docker engine runs here, so the container setup is checked by structure."""

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_container_runs_as_an_unprivileged_user_after_the_build_steps():
    instructions = dockerfile_instructions()
    users = [i for i, (name, _) in enumerate(instructions) if name == "USER"]
    assert users, "the Dockerfile sets no USER: the service would run as root"
    last = users[-1]
    user = instructions[last][1].split(":")[0]
    assert user not in {"root", "0"}
    # Created before it is used, and every RUN (which writes files) comes before.
    assert any(name == "RUN" and "useradd" in args for name, args in instructions[:last])
    assert all(name != "RUN" for name, _ in instructions[last:])
    assert "--uid 10001" in " ".join(args for _, args in instructions)


def test_gunicorn_runs_threaded_workers_set_by_one_replaceable_variable():
    instructions = dockerfile_instructions()
    env = " ".join(args for name, args in instructions if name == "ENV")
    assert "GUNICORN_CMD_ARGS=" in env
    for option in ("--worker-class gthread", "--threads 4", "--no-control-socket"):
        assert option in env
    # Options on the command line would win over GUNICORN_CMD_ARGS: only the bind is there.
    command = next(args for name, args in reversed(instructions) if name == "CMD")
    assert json.loads(command) == ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000"]
    assert compose()["services"]["app"]["command"].endswith(
        'exec gunicorn config.wsgi:application --bind 0.0.0.0:8000"'
    )


def test_clients_reach_nginx_only_and_the_app_trusts_one_proxy():
    services = compose()["services"]
    app, nginx = services["app"], services["nginx"]
    assert "ports" not in app  # only nginx reaches gunicorn
    assert [port.split(":")[-1] for port in app.get("expose", [])] == ["8000"]
    assert app["environment"]["NUM_PROXIES"] == "1"
    assert nginx["image"].startswith("nginx:1.")
    assert nginx["ports"] == ["8000:8000"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    published = [name for name, service in services.items() if service.get("ports")]
    assert published == ["nginx"]


def nginx_directives() -> dict[str, list[str]]:
    """Each directive of deploy/nginx.conf with its values (comments dropped)."""
    directives: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / "nginx.conf").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.endswith(";"):
            name, _, value = line[:-1].partition(" ")
            directives.setdefault(name, []).append(value.strip())
    return directives


def test_nginx_drops_slow_clients_buffers_both_ways_and_passes_the_client_address():
    directives = nginx_directives()
    for timeout in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        assert directives[timeout] == ["10s"]
    assert directives["proxy_request_buffering"] == ["on"]
    assert directives["proxy_buffering"] == ["on"]
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in directives["proxy_set_header"]
    assert "set" in directives and directives["set"] == ["$app http://app:8000"]
    assert directives["listen"] == ["8000"]


def test_nginx_refuses_bodies_over_the_service_cap():
    example = (ROOT / ".env.example").read_text().splitlines()
    cap = next(line.partition("=")[2] for line in example if line.startswith("MAX_REQUEST_BODY"))
    assert nginx_directives()["client_max_body_size"] == [cap]


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx is not installed")
def test_the_nginx_configuration_is_valid(tmp_path):
    result = subprocess.run(
        ["nginx", "-t", "-c", str(ROOT / "deploy" / "nginx.conf"), "-p", f"{tmp_path}/"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_the_embedded_database_folder_is_git_ignored():
    assert ".data/" in (ROOT / ".gitignore").read_text().splitlines()


def production_env() -> dict[str, str]:
    production = {}
    for line in (ROOT / "docs" / "production.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            production[name] = value
    return production


def check_deploy(production: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in production}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**env, **production},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_the_documented_production_environment():
    # With the placeholder replaced, as the file says to.
    production = {**production_env(), "SECRET_KEY": secrets.token_urlsafe(50)}
    result = check_deploy(production)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_documented_placeholder_secret_key_is_refused():
    result = check_deploy(production_env())
    assert result.returncode != 0
    assert "SECRET_KEY is a published placeholder" in result.stderr
