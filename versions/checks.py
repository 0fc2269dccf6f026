"""System checks beyond Django's own: operator settings that are only parsed when used (a
malformed endpoint profile shows at start-up, ``manage.py check``, not in the first run that names
it), and a deployment's secrets and shared counters (``manage.py check --deploy``)."""
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register()
def endpoint_profiles_check(app_configs, **kwargs):
    from versions.endpoints import EndpointConfigError, endpoint_profiles

    try:
        endpoint_profiles()
    except EndpointConfigError as exc:
        return [Error(str(exc), hint="Fix the profile in LETHE_ENDPOINTS or LETHE_ENDPOINTS_FILE (docs/deploy.md).", id="lethe.E001")]
    return []


# Marks of the secrets that ship in this repository: platform/env.example and
# platform/k8s/config.example.yaml ("change-me-..."), the development default
# ("...-not-for-production-...") and the Dockerfile's collectstatic stand-in. Django's own check
# only looks at the length and variety of the key, which these pass.
PLACEHOLDER_SECRET_MARKS = ("change-me", "changeme", "not-for-production", "collectstatic-only", "placeholder")


def secret_is_placeholder(secret):
    secret = str(secret).lower()
    return any(mark in secret for mark in PLACEHOLDER_SECRET_MARKS)


@register(Tags.security, deploy=True)
def secret_key_not_a_placeholder(app_configs, **kwargs):
    keys = [("LETHE_SECRET_KEY", settings.SECRET_KEY)] + [("SECRET_KEY_FALLBACKS", key) for key in settings.SECRET_KEY_FALLBACKS]
    return [
        Error(
            f"{name} is a placeholder that ships with Lethe; anyone can forge sessions, CSRF tokens and password resets with it.",
            hint='Set LETHE_SECRET_KEY to at least 50 random characters: python -c "import secrets; print(secrets.token_urlsafe(64))"',
            id="lethe.E002",
        )
        for name, key in keys
        if secret_is_placeholder(key)
    ]


@register(Tags.security, deploy=True)
def throttles_shared_between_processes(app_configs, **kwargs):
    backend = settings.CACHES["default"]["BACKEND"]
    if settings.PRODUCTION and backend.endswith("LocMemCache"):
        return [Warning(
            "The cache is local to each process, so every web process counts failed sign-ins and throttled requests on its own.",
            hint="Set LETHE_CACHE_URL=redis://... (the compose file's redis service) so every process shares one count.",
            id="lethe.W001",
        )]
    return []
