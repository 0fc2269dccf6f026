from django.apps import AppConfig


class VersionsConfig(AppConfig):
    name = "versions"
    verbose_name = "Version registry"

    def ready(self):
        from django.contrib import admin

        from versions import checks  # noqa: F401  (registers the system and deployment checks)
        from versions.forms import AdminSignInForm

        # The admin's sign-in page says when an address or username is locked out, as ours does.
        admin.site.login_form = AdminSignInForm
