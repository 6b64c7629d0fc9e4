# The front door. `make run` and `make test` are the quickstart; each recipe line
# is a plain command you can copy.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock | cut -c1-12)

.PHONY: install install-browser typecheck run test load fuzz abuse lint format migrate seed superuser schema sdk lock clean bench

$(STAMP): requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# TypeScript, to compile the generated client in the SDK tests.
NODE_STAMP := node_modules/.installed-$(shell sha256sum package-lock.json | cut -c1-12)
$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -f node_modules/.installed-* && touch $(NODE_STAMP)

# Debian's Chromium, for the browser tests (Playwright's own download does not work here).
# Needs root, so `make test` does not run it; without Chromium the browser tests are skipped,
# and the test run says so at the end.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

install: $(STAMP)

install-browser: $(CHROMIUM)

# Local development: DEBUG on unless you say otherwise.
run migrate seed superuser: export DEBUG ?= 1

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed
	$(BIN)/python manage.py runserver 127.0.0.1:8000

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: install
	$(BIN)/python manage.py seed

superuser: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py createsuperuser

# mypy with django-stubs ([tool.mypy] in pyproject.toml says what it checks). Its Django
# plugin imports the settings; a DATABASE_URL (never connected to) keeps them from
# starting the embedded PostgreSQL.
typecheck: export SECRET_KEY ?= typecheck-only-key
typecheck: install
	DATABASE_URL=postgres://typecheck@127.0.0.1:1/unused $(BIN)/mypy

test: export SECRET_KEY ?= insecure-test-only-key
test: install $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(MAKE) --no-print-directory typecheck
	$(BIN)/pytest

# Regenerate the committed OpenAPI document after changing the API.
schema: export SECRET_KEY ?= schema-generation-only
schema: install
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file openapi/v1.yaml

# Mixed read/write load on gunicorn for LOAD_SECONDS (default 60): no 5xx, no lost write.
load: export SECRET_KEY ?= insecure-test-only-key
load: install
	$(BIN)/pytest -m load -s tests/test_load.py

# Fuzzing against the live service with a fresh seed, printed first (FUZZ_SEED=<n> make fuzz
# replays a run): real and mutated cursors on every list, then Schemathesis with writes
# (at least 2,000 cases): no 5xx, no failure. 2.5 to 4 minutes on 2 cores.
fuzz: export SECRET_KEY ?= insecure-test-only-key
fuzz: install
	$(BIN)/pytest -m fuzz -s tests/test_fuzz.py

# Debian's nginx, the proxy of docker-compose.yml, for the abuse run.
NGINX := /usr/sbin/nginx
$(NGINX):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light

# Each attack of docs/reliability.md ("Abuse") against gunicorn behind nginx with
# production settings, on loopback: /healthz within 1 s throughout, every attack bounded.
abuse: export SECRET_KEY ?= insecure-test-only-key
abuse: install $(NGINX)
	$(BIN)/python bench/abuse.py --events 20000

# Client SDKs from the committed schema, into sdk/ (git-ignored).
sdk: install $(NODE_STAMP)
	rm -rf sdk/python sdk/typescript
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/openapi-python-client generate --path openapi/v1.yaml --output-path sdk/python --meta setup --config openapi/python-client.yaml
	$(BIN)/openapi-generator-cli generate -i openapi/v1.yaml -g typescript-fetch -o sdk/typescript --additional-properties=npmName=event-ledger-client,supportsES6=true
	# Read-your-writes (X-Commit-Position carried from call to call): hand-written, one file each.
	cp openapi/clients/commit_position.py sdk/python/event_ledger_api_client/
	cp openapi/clients/commitPosition.ts sdk/typescript/src/

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Re-pin dependencies after editing pyproject.toml.
lock: install
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --extra dev --strip-extras -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) node_modules sdk .pytest_cache .ruff_cache .mypy_cache staticfiles

# Benchmark on its own database (.data/bench-postgres) with EVENTS synthetic events,
# DURATION seconds of wrk per scenario, ROUNDS rounds against the peer (bench/peer.py);
# prints a table, writes bench/results/latest.json.
EVENTS ?= 1000000
DURATION ?= 20
ROUNDS ?= 3
CONNECTIONS ?= 8
WORKERS ?= 4
bench: install
	$(BIN)/python bench/run.py --events $(EVENTS) --duration $(DURATION) --rounds $(ROUNDS) --connections $(CONNECTIONS) --workers $(WORKERS)
