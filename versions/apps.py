from django.apps import AppConfig


class VersionsConfig(AppConfig):
    name = "versions"
    verbose_name = "Version registry"

    def ready(self):
        from versions import checks  # noqa: F401 (registers the system checks)
