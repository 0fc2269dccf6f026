"""Limits on failed authentication and on token creation, counted in the cache (``CACHES``:
local memory by default, Redis shared by every process when ``LETHE_CACHE_URL`` is set).

A failure (a wrong password, a bad bearer token, a session cookie that names no session) is
counted per client address and, for passwords, per username, in a fixed window of
``LETHE_AUTH_FAILURE_WINDOW_SECONDS``. Past ``LETHE_AUTH_FAILURES_PER_ADDRESS`` or
``LETHE_AUTH_FAILURES_PER_USERNAME`` failures the address or username is refused until the window
ends, even with the right password: guessing stops there, and an attacker learns nothing,
because a username that does not exist is counted (and refused) exactly like one that does.
"""

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle, UserRateThrottle


def client_address(request):
    """The client's address as DRF's throttles see it: REMOTE_ADDR, or the entry of
    X-Forwarded-For that the last ``LETHE_NUM_PROXIES`` proxies appended."""
    return BaseThrottle().get_ident(request) or "unknown"


class FailureLimit:
    """Failures per key in a fixed window: ``retry_after(key)`` is the seconds until a key that
    reached ``limit`` failures is accepted again (0: accepted now)."""

    def __init__(self, scope, *, limit_setting):
        self.scope = scope
        self.limit_setting = limit_setting

    @property
    def limit(self):
        return getattr(settings, self.limit_setting)

    @property
    def window(self):
        return settings.LETHE_AUTH_FAILURE_WINDOW_SECONDS

    def _keys(self, key):
        # Hashed: usernames and forwarded addresses are client-chosen text, and cache keys are
        # not the place for it (memcached refuses spaces and long keys).
        digest = hashlib.sha256(str(key).casefold().encode()).hexdigest()
        base = f"auth-failures:{self.scope}:{digest}"
        return f"{base}:count", f"{base}:ends"

    def retry_after(self, key):
        count_key, ends_key = self._keys(key)
        values = cache.get_many([count_key, ends_key])
        if values.get(count_key, 0) < self.limit:
            return 0
        return max(1, math.ceil(values.get(ends_key, time.time() + self.window) - time.time()))

    def record(self, key):
        count_key, ends_key = self._keys(key)
        window = self.window
        # The first failure opens the window; both keys expire with it.
        cache.add(ends_key, time.time() + window, timeout=window)
        cache.add(count_key, 0, timeout=window)
        try:
            cache.incr(count_key)
        except ValueError:  # the window ended between add and incr: this failure opens a new one
            cache.set(count_key, 1, timeout=window)
            cache.set(ends_key, time.time() + window, timeout=window)

    def reset(self, key):
        cache.delete_many(list(self._keys(key)))


FAILURES_BY_ADDRESS = FailureLimit("address", limit_setting="LETHE_AUTH_FAILURES_PER_ADDRESS")
FAILURES_BY_USERNAME = FailureLimit("username", limit_setting="LETHE_AUTH_FAILURES_PER_USERNAME")

LOCKED_MESSAGE = "Too many failed sign-in attempts for this username or from this address. Try again in {minutes} minute{s}."


def sign_in_retry_after(*, request, username):
    """Seconds until a sign-in of ``username`` from this request's address is accepted again."""
    waits = [FAILURES_BY_USERNAME.retry_after(username)] if username else []
    if request is not None:
        waits.append(FAILURES_BY_ADDRESS.retry_after(client_address(request)))
    return max(waits, default=0)


def sign_in_locked_message(seconds):
    minutes = max(1, math.ceil(seconds / 60))
    return LOCKED_MESSAGE.format(minutes=minutes, s="" if minutes == 1 else "s")


def sign_in_failed(*, request, username):
    if username:
        FAILURES_BY_USERNAME.record(username)
    if request is not None:
        FAILURES_BY_ADDRESS.record(client_address(request))


def sign_in_succeeded(*, username):
    """A right password clears its username's failures (not the address's: one account's
    success must not reset the count of guesses at others from the same address)."""
    if username:
        FAILURES_BY_USERNAME.reset(username)


class TokenCreateThrottle(UserRateThrottle):
    """``POST /api/v1/tokens/`` per user, at ``LETHE_TOKEN_CREATE_RATE`` (20/hour by default):
    a stolen session cannot mint tokens by the thousand. Listing and revoking are not limited."""

    scope = "token_create"

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        return super().allow_request(request, view)
