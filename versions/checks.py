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
        return [
            Warning(
                "The cache is local to each process, so every web process counts failed sign-ins and throttled requests on its own.",
                hint="Set LETHE_CACHE_URL=redis://... (the compose file's redis service) so every process shares one count.",
                id="lethe.W001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def artifact_store_usable(app_configs, **kwargs):
    """The blob store every web and worker process writes to: a bucket that answers, or a folder
    this process can write to."""
    from versions import object_store
    from versions.blob_store import _local_storage, artifact_storage

    storage = artifact_storage()
    if object_store.object_storage(storage):
        problem = object_store.bucket_reachable(storage)
        if problem:
            return [
                Error(
                    f"The artifact bucket is not usable: {problem}",
                    hint="Set LETHE_S3_BUCKET, LETHE_S3_ENDPOINT_URL (unless AWS) and AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY (or a role), and create the bucket (docs/deploy.md).",
                    id="lethe.E003",
                )
            ]
        return []
    local = _local_storage(storage)
    if local is not None:
        import os

        # A folder not there yet is created on the first write (a fresh volume is empty).
        if os.path.isdir(local.location) and not os.access(local.location, os.W_OK | os.X_OK):
            return [
                Error(
                    f"The artifact folder {local.location} cannot be written by this process.",
                    hint="Point LETHE_ARTIFACT_ROOT at a writable folder shared by every web and worker machine, or use LETHE_ARTIFACT_STORAGE=s3.",
                    id="lethe.E004",
                )
            ]
    return []
