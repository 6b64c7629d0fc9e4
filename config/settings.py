"""Settings for Event Ledger, driven entirely by environment variables.

`.env.example` lists every variable. Production behaviour is switched by
variables, never by a second settings file.
"""

import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from ledger.postgresql.embedded import embedded_database

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}."
    )


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer; got {raw!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# Secret key. With DEBUG off it must be set, and must not be one that is
# published: the placeholders of the docs (they begin "change-me"; the one the
# docs had before is listed), Django's generated development keys, or this
# file's own development key. `check --deploy` accepts a long placeholder.
_DEVELOPMENT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
_PUBLISHED_SECRET_KEYS = {
    _DEVELOPMENT_SECRET_KEY,
    "replace-with-50-random-characters-from-secrets.token_urlsafe-a1b2c3d4e5",
}
_PUBLISHED_SECRET_KEY_PREFIXES = ("change-me", "django-insecure-")
_NEW_SECRET_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off. Set SECRET_KEY to a long random "
            f"value (for example: {_NEW_SECRET_KEY}), or set DEBUG=1 for local development."
        )
    SECRET_KEY = _DEVELOPMENT_SECRET_KEY
elif not DEBUG and (
    SECRET_KEY in _PUBLISHED_SECRET_KEYS or SECRET_KEY.startswith(_PUBLISHED_SECRET_KEY_PREFIXES)
):
    raise ImproperlyConfigured(
        "SECRET_KEY is a published placeholder or development key and DEBUG is off. "
        f"Set SECRET_KEY to a long random value of your own (for example: {_NEW_SECRET_KEY})."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
CSRF_FAILURE_VIEW = "ledger.api.errors.csrf_failure"

# Browser apps served from these origins may call the API (CORS, under /api/
# only): scheme, host and optional port, e.g. https://app.example.org. Empty
# (the default): no other origin may read the API. Requests from them carry no
# cookies: a browser app signs in with a token (Authorization: Token <key>).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
for _origin in CORS_ALLOWED_ORIGINS:
    if not re.fullmatch(r"https?://[^/?#\s]+", _origin):
        raise ImproperlyConfigured(
            "CORS_ALLOWED_ORIGINS must list origins such as https://app.example.org "
            f"(scheme, host, optional port; no path, no trailing slash); got {_origin!r}."
        )
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ["DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"]
# The request headers the API reads.
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "x-change-reason",
    "x-commit-position",
    "x-request-id",
]
# The response headers a client needs besides those every browser shows
# (Cache-Control, Content-Type, ...). Pagination travels in the body (`next`),
# not in headers; Link is listed so that an answer may carry links later.
CORS_EXPOSE_HEADERS = [
    "Content-Disposition",
    "ETag",
    "Link",
    "Location",
    "Retry-After",
    "WWW-Authenticate",
    "X-Commit-Position",
    "X-Request-ID",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "csp",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "corsheaders",
    "ledger",
    "sources",
    "actors",
    "events",
]

MIDDLEWARE = [
    # First, so that every answer under /api/ carries the CORS headers, the
    # problems the middleware below answers on its own included.
    "corsheaders.middleware.CorsMiddleware",
    "ledger.api.errors.ProblemMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "ledger.context.RequestContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes requires: answers a login attempt it has locked out.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
# Where the admin is served (config/urls.py): a path of its own keeps it out of
# reach of scanners that try /admin/.
ADMIN_URL = os.environ.get("ADMIN_URL", "admin/")
if not ADMIN_URL.endswith("/") or ADMIN_URL.startswith("/"):
    raise ImproperlyConfigured(
        f"ADMIN_URL must be a path without a leading slash, ending with one "
        f"(e.g. curation/); got {ADMIN_URL!r}."
    )
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL only: DATABASE_URL when given, otherwise the embedded server.
EMBEDDED_POSTGRES_DIR = Path(
    os.environ.get("EMBEDDED_POSTGRES_DIR", BASE_DIR / ".data" / "postgres")
).resolve()
if os.environ.get("DATABASE_URL"):
    _database = dj_database_url.parse(os.environ["DATABASE_URL"])
    if _database["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...).")
else:
    _database = embedded_database(
        EMBEDDED_POSTGRES_DIR, os.environ.get("EMBEDDED_DB_NAME", "eventledger")
    )
# Django's PostgreSQL backend, with a health check that trusts a connection
# which has just served a request (config/postgresql/base.py).
_database["ENGINE"] = "ledger.postgresql"
_database["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
_database["CONN_HEALTH_CHECKS"] = True
# No query may run longer than this (milliseconds; 0 disables). Long maintenance
# commands can lift it: DATABASE_STATEMENT_TIMEOUT_MS=0 manage.py migrate.
DATABASE_STATEMENT_TIMEOUT_MS = env_int("DATABASE_STATEMENT_TIMEOUT_MS", 15000)
_database.setdefault("OPTIONS", {})["options"] = (
    f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}"
)
# The hot read paths' statements are prepared on the server once a connection
# has run them this many times, so the next runs skip planning
# (ledger/postgresql/base.py); 0: never, e.g. behind a connection pooler in
# transaction mode that keeps no prepared statements (docs/scaling.md).
DATABASE_PREPARE_THRESHOLD = env_int("DATABASE_PREPARE_THRESHOLD", 1)
_database["OPTIONS"]["prepare_threshold"] = DATABASE_PREPARE_THRESHOLD or None
DATABASES = {"default": _database}
# Streaming replicas of the primary (docs/scaling.md): the reads of GET and HEAD
# requests under /api/ go to one of them (ledger/routing.py). Comma-separated
# URLs; one without a database name reads the primary's. Empty (the default):
# one database, and no router.
DATABASE_REPLICA_URLS = env_list("DATABASE_REPLICA_URLS", [])
# A replica that has not replayed what the primary had this long ago is taken
# out of rotation until it catches up (milliseconds).
DATABASE_REPLICA_MAX_LAG_MS = env_int("DATABASE_REPLICA_MAX_LAG_MS", 5000)
# How often each process checks its replicas' lag, on the request path (ms).
DATABASE_REPLICA_CHECK_MS = env_int("DATABASE_REPLICA_CHECK_MS", 1000)
for _number, _url in enumerate(DATABASE_REPLICA_URLS, start=1):
    _replica = dj_database_url.parse(_url)
    if _replica["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            f"DATABASE_REPLICA_URLS must list PostgreSQL URLs (postgres://...); got {_url!r}."
        )
    _replica.update(
        ENGINE=_database["ENGINE"],
        NAME=_replica["NAME"] or _database["NAME"],
        CONN_MAX_AGE=_database["CONN_MAX_AGE"],
        CONN_HEALTH_CHECKS=True,
        # Tests read the primary's test database under this alias too.
        TEST={"MIRROR": "default"},
    )
    # A replica that does not answer is given up on after 2 s (libpq's least).
    _replica["OPTIONS"] = {**_replica.get("OPTIONS", {}), **_database["OPTIONS"]}
    _replica["OPTIONS"].setdefault("connect_timeout", 2)
    DATABASES[f"replica_{_number}"] = _replica
DATABASE_ROUTERS: list[str] = []
if DATABASE_REPLICA_URLS:
    DATABASE_ROUTERS = ["ledger.routing.ReplicaRouter"]
    # Inside the problem middleware: a request it retries on the primary runs
    # every middleware after it again.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("ledger.api.errors.ProblemMiddleware") + 1,
        "ledger.routing.ReplicaMiddleware",
    )
# The role web processes run as: may read and write rows, may add history but
# not change it (ledger/database_role.py). Empty: run as the connecting user.
DATABASE_APP_ROLE = os.environ.get("DATABASE_APP_ROLE", "ledger_app")
if DATABASE_APP_ROLE and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", DATABASE_APP_ROLE):
    raise ImproperlyConfigured(
        "DATABASE_APP_ROLE must be a plain role name (lower-case letters, digits, _)."
    )
# Streaming exports (GET /api/v1/events/export) may run this long (milliseconds).
EXPORT_TIMEOUT_MS = env_int("EXPORT_TIMEOUT_MS", 600_000)
# An unfiltered export of at least this many events is made in slices of about
# EXPORT_SLICE_EVENTS events by two database connections at once.
EXPORT_PARALLEL_MIN_EVENTS = env_int("EXPORT_PARALLEL_MIN_EVENTS", 100_000)
EXPORT_SLICE_EVENTS = env_int("EXPORT_SLICE_EVENTS", 25_000)


# Bounds on search and export, against clients that use them as weapons
# (docs/api.md, "Search" and "Export"). A search (`q` on the event and
# statement lists and the export) runs under a statement timeout of its own, in
# milliseconds (0: only DATABASE_STATEMENT_TIMEOUT_MS), and has a rate of its
# own besides THROTTLE_ANON/THROTTLE_USER: per address, and per signed-in user.
def env_rate(name: str, default: str) -> str:
    """A request rate as DRF reads it: N/second, N/min, N/hour, N/day."""
    rate = os.environ.get(name) or default
    count, _, period = rate.partition("/")
    if not count.isdigit() or period[:1] not in ("s", "m", "h", "d"):
        raise ImproperlyConfigured(f"{name} must be a rate such as 30/min; got {rate!r}.")
    return rate


SEARCH_TIMEOUT_MS = env_int("SEARCH_TIMEOUT_MS", 3000)
THROTTLE_SEARCH = env_rate("THROTTLE_SEARCH", "30/min")
THROTTLE_SEARCH_USER = env_rate("THROTTLE_SEARCH_USER", "300/min")
# Anonymous clients may export at most this many events (0: only signed-in users
# may export); signed-in users, any number.
EXPORT_ANON_MAX_ROWS = env_int("EXPORT_ANON_MAX_ROWS", 10_000)
# Exports running at once: in all, per anonymous address, per user (0: no
# limit). Counted in the cache: across server processes with CACHE_URL.
EXPORT_MAX_CONCURRENT = env_int("EXPORT_MAX_CONCURRENT", 2)
EXPORT_MAX_CONCURRENT_ANON = env_int("EXPORT_MAX_CONCURRENT_ANON", 1)
EXPORT_MAX_CONCURRENT_USER = env_int("EXPORT_MAX_CONCURRENT_USER", 2)
# An export whose client takes no data for this long is stopped (milliseconds;
# under gunicorn). EXPORT_TIMEOUT_MS also bounds an export's whole duration.
EXPORT_STALL_TIMEOUT_MS = env_int("EXPORT_STALL_TIMEOUT_MS", 30_000)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Login lockout (django-axes). The admin's and the browsable API's login forms
# lock a user name out from one client address after LOGIN_FAILURE_LIMIT failed
# attempts, for LOGIN_LOCKOUT_MINUTES since the last one, answering 429 without
# checking the password (so guessing costs no hashing); other users and other
# addresses are not affected, and a successful login forgets the failures.
# Attempts are kept in the database (Axes admin pages: delete one to unlock).
# Token-authenticated API requests never log in, so they are neither counted
# nor refused. The client address is the one the throttles use (NUM_PROXIES).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Attempts while locked out are refused but not recorded: the lock is not
# extended, and the attempt's record (which appends each try) stays small.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HTTP_RESPONSE_CODE = 429
AXES_CLIENT_IP_CALLABLE = "ledger.api.throttling.client_address"


AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# HTTPS: production turns these on (docs/production.env); health checks stay on HTTP.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Every page, the API docs and the admin included, runs under this policy:
# scripts only from this service, no inline scripts.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # Swagger UI and Redoc set inline styles.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        # Redoc renders in a worker it creates from a blob.
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Request bodies larger than this are refused with 413 (bytes).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BODY_BYTES", 1_000_000)
# Items in one list of a write body (evidence, participants, aliases, ...).
API_MAX_LIST_ITEMS = env_int("API_MAX_LIST_ITEMS", 200)

# How long an Idempotency-Key is remembered.
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)

# Throttle counters live in the cache. With CACHE_URL (redis://...) every server
# process shares them; without it each process counts on its own.
if os.environ.get("CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CACHE_URL"],
            "KEY_PREFIX": "eventledger",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Client identity behind proxies: how many proxies in front append to
# X-Forwarded-For. 0 (the default) ignores the header, which any client can
# write, and counts REMOTE_ADDR; with N, the N-th address from the right (the one
# the outermost trusted proxy saw) is the client. Throttles and the login lockout
# both count clients this way.
NUM_PROXIES = env_int("NUM_PROXIES", 0)
if NUM_PROXIES < 0:
    raise ImproperlyConfigured(f"NUM_PROXIES must be 0 or more; got {NUM_PROXIES}.")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so an anonymous write is answered 401 with WWW-Authenticate.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.DjangoModelPermissionsOrAnonReadOnly"
    ],
    "DEFAULT_PARSER_CLASSES": ["ledger.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["ledger.api.filters.FilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "ledger.api.pagination.KeysetPagination",
    "DEFAULT_THROTTLE_CLASSES": [
        "ledger.api.throttling.AnonThrottle",
        "ledger.api.throttling.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("THROTTLE_ANON", "300/min"),
        "user": os.environ.get("THROTTLE_USER", "1200/min"),
    },
    "NUM_PROXIES": NUM_PROXIES,
    "EXCEPTION_HANDLER": "ledger.api.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_VERSIONING_CLASS": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Event Ledger API",
    "DESCRIPTION": (
        "Structured event data: actors, the events between them and the statements they "
        "made, each tied to the exact span of the source text it comes from. "
        "Lists use cursor pagination (follow `next`); errors are RFC 9457 problem details."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "COMPONENT_NO_READ_ONLY_REQUIRED": False,
    "ENUM_NAME_OVERRIDES": {
        "ActorKindEnum": "actors.models.ActorKind",
        "SectorEnum": "actors.models.Sector",
        "PlaceKindEnum": "events.models.PlaceKind",
        "DatePrecisionEnum": "ledger.models.DatePrecision",
        "EventTypeEnum": "events.models.EventType",
        "EventContextEnum": "events.models.EventContext",
        "EventStatusEnum": "events.models.EventStatus",
        "ReviewStatusEnum": "events.models.ReviewStatus",
        "ParticipantRoleEnum": "events.models.ParticipantRole",
        "StatementKindEnum": "events.models.StatementKind",
        "StanceEnum": "events.models.Stance",
        "QuadClassEnum": "events.models.QuadClass",
    },
    "ENUM_GENERATE_CHOICE_DESCRIPTION": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "ledger.api.schema.problem_responses_hook",
        "ledger.api.schema.merged_redirect_hook",
        "ledger.api.schema.single_response_examples_hook",
        "ledger.api.schema.client_hygiene_hook",
        "ledger.api.schema.commit_position_hook",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # pgserver narrates every start and stop of the embedded server at INFO;
    # django-axes logs its start at INFO; failures and lockouts at WARNING.
    "loggers": {"pgserver": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
