"""The API documentation page, with Swagger UI served from this site's static files, never from a CDN."""

from __future__ import annotations

from django.templatetags.static import static
from drf_spectacular.views import SpectacularSwaggerView

SWAGGER_UI_FOLDER = "drf_spectacular_sidecar/swagger-ui-dist"


class LocalSwaggerView(SpectacularSwaggerView):
    """Swagger UI from the drf-spectacular-sidecar package (which must be in INSTALLED_APPS)."""

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return static(f"{SWAGGER_UI_FOLDER}/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return static(f"{SWAGGER_UI_FOLDER}/favicon-32x32.png")
