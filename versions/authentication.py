"""How people and programs prove who they are, and the limits on guessing.

Bearer tokens for programs: ``Authorization: Bearer <key>`` (or ``Token <key>``). Only the sha256
of a key is stored, so a database dump does not leak usable tokens. A revoked token is refused on
its next request: revocation is a column checked on every lookup. ``request.auth`` is the
token's id.

Every failed attempt (a bad token, a session cookie that names no session, a wrong password
anywhere ``authenticate()`` is called) is counted by ``versions.throttling``. A password is not
checked at all while its username or address is locked (passwords can be guessed). A token or
cookie is looked at first and the lock consulted only when it fails: a key of 256 random bits
cannot be guessed, so the lock stops the hammering (429 with Retry-After instead of 401) without
a cache read on every request, and a valid client behind the same address keeps working.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from versions import sql, throttling
from versions.models import ApiToken


LAST_USED_EVERY = timedelta(seconds=60)  # how fresh a token's last_used_at is kept


def token_sha256(key):
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="replace") not in self.keywords:
            return None
        try:
            return self._authenticate_token(header)
        except exceptions.AuthenticationFailed:
            api_failure_record(request)
            raise

    def _authenticate_token(self, header):
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Token contains invalid characters.") from None
        now = timezone.now()
        # The user, with whether the token is revoked and whether its last use is older than a
        # minute, in one statement (SQL: every API request runs it).
        user = sql.token_user(key_sha256=token_sha256(key), stale_before=now - LAST_USED_EVERY)
        if user is None or user.token_revoked:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive.")
        if user.token_stale:
            # Throttled so a busy client does not turn every read into a write.
            ApiToken.objects.filter(pk=user.token_id).update(last_used_at=now)
        return user, user.token_id

    def authenticate_header(self, request):
        return "Bearer"


def api_failure_record(request):
    """Count a failed API authentication from the request's address; Throttled (429 with
    Retry-After) instead when the address is already locked."""
    address = throttling.client_address(request)
    wait = throttling.FAILURES_BY_ADDRESS.retry_after(address)
    if wait:
        raise exceptions.Throttled(wait, detail="Too many failed authentication attempts from this address.")
    throttling.FAILURES_BY_ADDRESS.record(address)


class ThrottledSessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication; a session cookie that names no signed-in session (forged,
    or expired) counts as a failed attempt from the address, as a bad token does."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None and settings.SESSION_COOKIE_NAME in request._request.COOKIES:
            api_failure_record(request)
        return result


class ThrottledModelBackend(ModelBackend):
    """Django's username and password check behind the failure limits: a locked username or
    address is refused before the password is checked (PermissionDenied stops authenticate()),
    every wrong password is counted, and a right one clears its username's count. The sign-in
    page, the admin's and anything else calling ``authenticate()`` pass here."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if throttling.sign_in_retry_after(request=request, username=username):
            raise PermissionDenied("locked out")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            throttling.sign_in_failed(request=request, username=username)
        else:
            throttling.sign_in_succeeded(username=username)
        return user


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes the bearer token in the OpenAPI schema, so generated clients know to send it."""

    target_class = "versions.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A Lethe API token: `Authorization: Bearer lethe_...`"}


class ThrottledSessionScheme(SessionScheme):
    """The session cookie in the OpenAPI schema, as for DRF's own session authentication."""

    target_class = "versions.authentication.ThrottledSessionAuthentication"
