from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

api_v1 = [
    path("", include("versions.api.urls")),
    path("", include("jobs.api_urls")),
    path("", include("unlearning.api_urls")),
    path("", include("evals.api_urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include("versions.urls")),
    path("", include("jobs.urls")),
    path("", include("unlearning.urls")),
    path("", include("evals.urls")),
]

# URLs under /api/ that match no route answer the API's JSON error body, not an HTML page.
handler404 = "versions.api.errors.not_found"
# What Django refuses before a view runs (a body over the size limit: 413) answers the JSON error
# body under /api/ and a page elsewhere.
handler400 = "versions.api.errors.bad_request"
handler500 = "versions.api.errors.server_error"
