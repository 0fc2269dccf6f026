"""Accounts and abuse: guessing passwords and tokens is throttled (per username and per client
address, counted in the real cache: local memory, and Redis when marked ``redis``), token
creation is rate limited, and every password set anywhere passes the validators."""

import time
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from demo.services import DEMO_PASSWORD, DEMO_USERNAME, demo_user
from versions import services
from core.errors import ValidationFailed
from versions.models import ApiToken

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-only"
LOCKED = "Too many failed sign-in attempts for this username or from this address. Try again in 15 minutes."
REDIS_CACHE_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.redis)])
def throttle_cache(request, settings):
    """The cache the counters live in: this process's memory, or a Redis server shared by every
    process (keys under a prefix of this test's own, removed after it)."""
    if request.param == "locmem":
        yield "locmem"
        return
    import redis

    client = redis.Redis.from_url(REDIS_CACHE_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"needs a Redis server at {REDIS_CACHE_URL}, which is not answering ({exc})")
    prefix = f"lethe-test-{uuid.uuid4().hex}"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_CACHE_URL, "KEY_PREFIX": prefix}}
    yield "redis"
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def sign_in(username, password, address="10.0.0.1", **headers):
    client = Client(REMOTE_ADDR=address, **headers)
    return client, client.post("/login/", {"username": username, "password": password})


def signed_in(client):
    return "_auth_user_id" in client.session


def error_of(response):
    return response.json()["error"]


def window_left_since(started):
    """The seconds a lock taken after ``started`` may still have to run: the whole window less the
    time spent since, rounded as Retry-After is. Measured, not assumed, so a slow machine (60
    password checks can take longer than ten seconds) does not fail the test."""
    elapsed = time.monotonic() - started
    return range(900 - int(elapsed) - 1, 901)


def bearer(key, address="10.0.0.1"):
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


# ---------------------------------------------------------------- sign-in page


def test_sixty_wrong_passwords_lock_the_username_and_the_right_one_is_then_refused(throttle_cache, user):
    # given an attacker who tried 60 wrong passwords for alice
    started = time.monotonic()
    answers = [sign_in("alice", f"guess-{n}")[1] for n in range(60)]

    # when the right password comes next
    client, response = sign_in("alice", PASSWORD)

    # then the first 10 were checked and refused, the rest (and the right one) refused unchecked
    assert [a.status_code for a in answers] == [200] * 10 + [429] * 50
    assert "Please enter a correct username and password" in answers[0].content.decode()
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert int(response["Retry-After"]) in window_left_since(started)
    assert not signed_in(client)


def test_the_lockout_says_the_same_whether_the_username_exists_or_not(throttle_cache, user):
    for username in ("alice", "nobody-by-this-name"):
        for n in range(10):
            sign_in(username, f"guess-{n}", address="10.0.0.9")

    exists = sign_in("alice", "guess", address="10.0.0.8")[1]
    missing = sign_in("nobody-by-this-name", "guess", address="10.0.0.8")[1]

    for answer in (exists, missing):
        page = answer.content.decode()
        assert answer.status_code == 429
        assert LOCKED in page and "Please enter a correct username" not in page


def test_guesses_at_many_usernames_lock_the_address_not_the_accounts(throttle_cache, settings, user):
    settings.LETHE_AUTH_FAILURES_PER_ADDRESS = 5
    # given five failed sign-ins, each at another username, from one address
    for n in range(5):
        sign_in(f"user-{n}", "guess", address="10.0.0.2")

    # when alice signs in from that address (even naming another in X-Forwarded-For), and from another
    client_same, same = sign_in("alice", PASSWORD, address="10.0.0.2", HTTP_X_FORWARDED_FOR="10.9.9.9")
    client_other, other = sign_in("alice", PASSWORD, address="10.0.0.3")

    # then the address is locked and alice is not
    assert same.status_code == 429 and LOCKED in same.content.decode() and not signed_in(client_same)
    assert other.status_code == 302 and signed_in(client_other)


def test_a_right_password_clears_its_usernames_failures(throttle_cache, user):
    for n in range(9):
        sign_in("alice", f"guess-{n}")
    assert signed_in(sign_in("alice", PASSWORD)[0])

    answers = [sign_in("alice", f"again-{n}")[1].status_code for n in range(10)]

    assert answers == [200] * 10  # nine earlier failures no longer count


def test_the_lock_ends_with_its_window(throttle_cache, settings, user):
    settings.LETHE_AUTH_FAILURES_PER_USERNAME = 2
    settings.LETHE_AUTH_FAILURE_WINDOW_SECONDS = 4
    for n in range(2):
        sign_in("alice", f"guess-{n}")
    locked = sign_in("alice", PASSWORD)[1]
    assert locked.status_code == 429

    time.sleep(int(locked["Retry-After"]) + 0.5)

    assert signed_in(sign_in("alice", PASSWORD)[0])


def test_the_admin_sign_in_page_is_locked_too(throttle_cache, make_user):
    root = make_user("root")
    get_user_model().objects.filter(pk=root.pk).update(is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR="10.0.0.4")
    for n in range(10):
        client.post("/admin/login/", {"username": "root", "password": f"guess-{n}"})

    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 200  # the admin's own page, with our message
    assert LOCKED in response.content.decode()
    assert not signed_in(client)


# ---------------------------------------------------------------- the API


def test_random_bearer_tokens_lock_the_address_with_429_in_the_error_shape(throttle_cache, user, project):
    # given a valid token, and an attacker trying random ones from one address
    _, key = services.token_create(user=user, name="ci")
    started = time.monotonic()
    guesses = [bearer(f"lethe_{uuid.uuid4().hex}").get("/api/v1/projects/safety/") for _ in range(30)]

    # when the address sends another guess, and a client behind it the valid token
    locked = bearer(f"lethe_{uuid.uuid4().hex}").get("/api/v1/projects/safety/")
    valid = bearer(key).get("/api/v1/projects/safety/")

    # then every guess was a 401 until the 31st: refused unchecked until the window ends, while a
    # real token (256 random bits: guessing it is not what the lock is against) keeps working
    assert {g.status_code for g in guesses} == {401}
    assert locked.status_code == 429
    assert error_of(locked)["code"] == "throttled"
    assert error_of(locked)["fields"] == {}
    assert int(locked["Retry-After"]) in window_left_since(started)
    assert error_of(locked)["message"] == (f"Too many failed authentication attempts from this address. Expected available in {locked['Retry-After']} seconds.")
    assert valid.status_code == 200


def test_forged_session_cookies_count_as_failures(throttle_cache, settings, user, project):
    settings.LETHE_AUTH_FAILURES_PER_ADDRESS = 3
    client = APIClient(REMOTE_ADDR="10.0.0.6")
    answers = []
    for _ in range(4):
        client.cookies[settings.SESSION_COOKIE_NAME] = uuid.uuid4().hex
        answers.append(client.get("/api/v1/projects/safety/").status_code)

    assert answers == [401, 401, 401, 429]


def test_anonymous_requests_without_credentials_are_not_counted(throttle_cache, settings, project):
    settings.LETHE_AUTH_FAILURES_PER_ADDRESS = 3

    answers = [APIClient(REMOTE_ADDR="10.0.0.7").get("/api/v1/projects/safety/").status_code for _ in range(5)]

    assert answers == [401] * 5


def test_token_creation_is_limited_per_user(throttle_cache, user, project):
    client = APIClient()
    client.force_authenticate(user=user)
    created = [client.post("/api/v1/tokens/", {"name": f"t{n}"}).status_code for n in range(20)]

    refused = client.post("/api/v1/tokens/", {"name": "one-more"})
    listed = client.get("/api/v1/tokens/")

    assert created == [201] * 20
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert listed.status_code == 200 and listed.json()["count"] == 20
    assert ApiToken.objects.filter(user=user).count() == 20


# ---------------------------------------------------------------- passwords


@pytest.mark.parametrize(
    ("password", "messages"),
    [
        ("x7q", ["This password is too short. It must contain at least 12 characters."]),
        ("qwertyuiop123", ["This password is too common."]),
        ("918273645546372819", ["This password is entirely numeric."]),
        ("margaret.hamilton", ["The password is too similar to the username."]),
    ],
)
def test_weak_passwords_are_refused_when_a_user_is_created(password, messages):
    with pytest.raises(ValidationFailed) as refused:
        services.user_create(username="margaret.hamilton", password=password)

    assert refused.value.fields == {"password": messages}
    assert str(refused.value) == "Password refused: " + " ".join(messages)
    assert not get_user_model().objects.filter(username="margaret.hamilton").exists()


def test_lethe_user_create_refuses_a_three_character_password(monkeypatch):
    monkeypatch.setenv("NEW_PASSWORD", "x7q")

    with pytest.raises(CommandError, match="^Password refused: This password is too short. It must contain at least 12 characters.$"):
        call_command("lethe_user", "create", "bob", "--password-env", "NEW_PASSWORD")

    assert not get_user_model().objects.filter(username="bob").exists()


def test_changing_a_password_is_validated_too(user):
    with pytest.raises(ValidationFailed, match="too short"):
        services.user_password_set(user=user, password="short")
    user.refresh_from_db()
    assert user.check_password(PASSWORD)

    services.user_password_set(user=user, password="a-much-longer-passphrase")
    user.refresh_from_db()
    assert user.check_password("a-much-longer-passphrase")


def test_the_demo_password_passes_the_validators_and_the_readme_gives_it():
    user = demo_user()

    assert user.check_password(DEMO_PASSWORD)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"`{DEMO_USERNAME}` / `{DEMO_PASSWORD}`" in readme
    assert f"sign in as {DEMO_USERNAME} / {DEMO_PASSWORD}" in readme
