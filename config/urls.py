from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from jobs import urls as jobs_urls
from pages import urls as pages_urls
from versions import urls as versions_urls


class RedocView(SpectacularRedocView):
    """Redoc from the sidecar's files. Its bundle hard-codes a footer logo on Redocly's CDN; this
    page's policy allows images from here only, so the browser never requests it."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = "img-src 'self' data:"
        return response


api_v1 = [
    path("", include("versions.api.urls")),
    path("", include("jobs.api_urls")),
    path("", include("unlearning.api_urls")),
    path("", include("evals.api_urls")),
    path("", include("sweeps.api_urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files (no CDN); the split view
    # loads its start-up script as a file, so a Content-Security-Policy of 'self' allows it.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="api-redoc"),
    path("admin/", admin.site.urls),
    # The composed pages (pages.urls) keep the URL names the registry and the runs app gave them.
    path("", include((versions_urls.urlpatterns + pages_urls.registry_pages, versions_urls.app_name))),
    path("", include((jobs_urls.urlpatterns + pages_urls.run_pages, jobs_urls.app_name))),
    path("", include("unlearning.urls")),
    path("", include("evals.urls")),
    path("", include("sweeps.urls")),
]

# URLs under /api/ that match no route answer the API's JSON error body, not an HTML page.
handler404 = "core.api.errors.not_found"
# What Django refuses before a view runs (a body over the size limit: 413) answers the JSON error
# body under /api/ and a page elsewhere.
handler400 = "core.api.errors.bad_request"
handler500 = "core.api.errors.server_error"
# Pages (outside /api/) fall back to Django's handlers, which render templates/404.html and
# 500.html: with DEBUG off, never the debug pages that list every URL pattern.
