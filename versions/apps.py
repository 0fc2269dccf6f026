from django.apps import AppConfig


class VersionsConfig(AppConfig):
    name = "versions"
    verbose_name = "Version registry"

    def ready(self):
        from django.contrib import admin

        from core.api.views import project_resolver_register
        from versions import checks  # noqa: F401  (registers the system and deployment checks)
        from versions.forms import AdminSignInForm
        from versions.permissions import project_require
        from versions.project_scope import register_registry_scopes

        # Every app's ProjectApiView resolves its project through the registry's memberships.
        project_resolver_register(project_require)

        # The admin's sign-in page says when an address or username is locked out, as ours does.
        admin.site.login_form = AdminSignInForm

        # A project's rows, for bundles and project deletion; higher apps add theirs in their ready().
        register_registry_scopes()
