"""Bearer tokens for programs: ``Authorization: Bearer <key>`` (or ``Token <key>``).

Only the sha256 of a key is stored, so a database dump does not leak usable tokens. A revoked
token is refused on its next request: revocation is a column checked on every lookup.
``request.auth`` is the token's id.
"""
import hashlib
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from versions.models import ApiToken


LAST_USED_EVERY = timedelta(seconds=60)  # how fresh a token's last_used_at is kept
_TOKEN_USER_SQL = (
    "SELECT u.*, t.id AS token_id, t.revoked_at IS NOT NULL AS token_revoked, "
    "(t.last_used_at IS NULL OR t.last_used_at < %s) AS token_stale "
    "FROM versions_apitoken t JOIN {user_table} u ON u.id = t.user_id WHERE t.key_sha256 = %s"
)


def token_sha256(key):
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        try:
            key = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Token contains invalid characters.")
        now = timezone.now()
        # The user, with whether the token is revoked and whether its last use is older than a
        # minute, in one statement: every API request runs it, and compiling it through the ORM
        # took twice as long as running it.
        stale_before = connection.ops.adapt_datetimefield_value(now - LAST_USED_EVERY)
        users = get_user_model().objects
        user = next(iter(users.raw(_TOKEN_USER_SQL.format(user_table=users.model._meta.db_table), [stale_before, token_sha256(key)])), None)
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


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes the bearer token in the OpenAPI schema, so generated clients know to send it."""

    target_class = "versions.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A Lethe API token: `Authorization: Bearer lethe_...`"}
