"""Abusive clients: a spoofed X-Forwarded-For does not escape the throttle, and
password guessing on the login forms is locked out."""

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-1"


@pytest.fixture
def anon_rate(settings):
    """THROTTLE_ANON=3/min, everything else as the settings module has it
    (NUM_PROXIES included)."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "3/min", "user": "1200/min"},
    }


def statuses(client, forwarded_for: list[str], **extra) -> list[int]:
    return [
        client.get("/api/v1/events/", HTTP_X_FORWARDED_FOR=value, **extra).status_code
        for value in forwarded_for
    ]


def test_a_new_x_forwarded_for_per_request_does_not_reset_the_throttle(client, anon_rate):
    spoofed = [f"203.0.113.{n}" for n in range(6)]
    assert statuses(client, spoofed) == [200, 200, 200, 429, 429, 429]


def test_behind_one_proxy_the_address_it_appends_is_the_client(client, anon_rate, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # The proxy appends the address it saw; whatever the client wrote before it
    # is ignored, so one client stays one client ...
    same_client = [f"203.0.113.{n}, 198.51.100.7" for n in range(4)]
    assert statuses(client, same_client) == [200, 200, 200, 429]
    # ... and another client behind the same proxy has a budget of its own.
    assert statuses(client, ["198.51.100.8"]) == [200]


def test_the_login_lockout_counts_clients_by_the_same_address_as_the_throttle(settings, rf):
    from axes.helpers import get_client_ip_address

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 0}
    request = rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.9", REMOTE_ADDR="10.0.0.2")
    assert get_client_ip_address(request) == "10.0.0.2"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert get_client_ip_address(request) == "203.0.113.9"


@pytest.fixture
def staff():
    def make(username: str) -> User:
        return User.objects.create_user(username, password=PASSWORD, is_staff=True)

    return make


def log_in(client, url: str, username: str, password: str, address: str = "192.0.2.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("url", ["/admin/login/", "/api-auth/login/"])
def test_wrong_passwords_lock_the_user_out_from_that_address(client, staff, url):
    staff("alice")
    answers = [log_in(client, url, "alice", f"guess-{n}").status_code for n in range(6)]
    # Four failures re-show the form; the fifth locks, for 15 minutes.
    assert answers == [200, 200, 200, 200, 429, 429]
    locked = log_in(client, url, "alice", PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("url", ["/admin/login/", "/api-auth/login/"])
def test_a_locked_out_user_does_not_lock_out_others_or_other_addresses(client, staff, url):
    staff("alice")
    staff("bob")
    for n in range(6):
        log_in(client, url, "alice", f"guess-{n}")
    # Another user from the same address logs in ...
    assert log_in(client, url, "bob", PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(User.objects.get(username="bob").pk)
    # ... and so does alice from elsewhere: the lock is per user name and address.
    client.logout()
    assert log_in(client, url, "alice", PASSWORD, address="192.0.2.2").status_code == 302


def test_a_successful_login_forgets_the_earlier_failures(client, staff):
    staff("alice")
    for n in range(4):
        log_in(client, "/admin/login/", "alice", f"guess-{n}")
    assert log_in(client, "/admin/login/", "alice", PASSWORD).status_code == 302
    client.logout()
    answers = [log_in(client, "/admin/login/", "alice", f"again-{n}").status_code for n in range(4)]
    assert answers == [200, 200, 200, 200]


def test_token_requests_are_not_affected_by_a_lockout(client, staff):
    alice = staff("alice")
    alice.user_permissions.add(*alice.user_permissions.model.objects.filter(codename="add_place"))
    token = Token.objects.create(user=alice)
    for n in range(6):
        log_in(client, "/admin/login/", "alice", f"guess-{n}")
    assert log_in(client, "/admin/login/", "alice", PASSWORD).status_code == 429

    from rest_framework.test import APIClient

    api = APIClient(REMOTE_ADDR="192.0.2.1")
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/v1/places/").status_code == 200
    created = api.post("/api/v1/places/", {"slug": "yerevan", "name": "Yerevan", "kind": "city"})
    assert created.status_code == 201, created.content


def test_attempts_while_locked_out_are_refused_without_extending_the_lock(client, staff):
    from axes.models import AccessAttempt

    staff("alice")
    for n in range(5):
        log_in(client, "/admin/login/", "alice", f"guess-{n}")
    attempt = AccessAttempt.objects.get(username="alice")
    locked_at = attempt.attempt_time
    for n in range(20):
        assert log_in(client, "/admin/login/", "alice", f"more-{n}").status_code == 429
    attempt.refresh_from_db()
    assert attempt.failures_since_start == 5
    assert attempt.attempt_time == locked_at
