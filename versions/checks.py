"""System checks of operator settings that are only parsed when used: a malformed endpoint
profile shows at start-up (``manage.py check``), not in the first run that names it."""
from django.core.checks import Error, register


@register()
def endpoint_profiles_check(app_configs, **kwargs):
    from versions.endpoints import EndpointConfigError, endpoint_profiles

    try:
        endpoint_profiles()
    except EndpointConfigError as exc:
        return [Error(str(exc), hint="Fix the profile in LETHE_ENDPOINTS or LETHE_ENDPOINTS_FILE (docs/deploy.md).", id="lethe.E001")]
    return []
