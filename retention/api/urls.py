from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from retention.api.views_recommendations import RecommendationCreateView

urlpatterns = [
    path("recommendations/", RecommendationCreateView.as_view(), name="api-recommendations"),
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="api-schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
]
