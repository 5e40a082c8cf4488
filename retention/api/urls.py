from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from retention.api import schema  # noqa: F401  (registers the token scheme with the schema generator)
from retention.api.docs import LocalSwaggerView
from retention.api.errors import not_found_json
from retention.api.views_catalog import ModelVersionListView, OfferListView, TrainingJobListView
from retention.api.views_customers import CustomerBulkUpsertView, CustomerDetailView
from retention.api.views_decisions import DecisionListView
from retention.api.views_outcomes import OutcomeCreateView
from retention.api.views_recommendations import RecommendationCreateView
from retention.api.views_renewals import RenewalCreateView
from retention.api.views_scores import ScoreCreateView, ScoringJobCreateView, ScoringJobDetailView, ScoringJobResultView

urlpatterns = [
    path("customers/bulk/", CustomerBulkUpsertView.as_view(), name="api-customers-bulk"),
    # path: an external id may hold a slash ("A/B-1"), sent encoded (%2F) and decoded before routing.
    path("customers/<path:external_id>/", CustomerDetailView.as_view(), name="api-customer"),
    path("recommendations/", RecommendationCreateView.as_view(), name="api-recommendations"),
    path("outcomes/", OutcomeCreateView.as_view(), name="api-outcomes"),
    path("renewals/", RenewalCreateView.as_view(), name="api-renewals"),
    path("scores/", ScoreCreateView.as_view(), name="api-scores"),
    path("scoring-jobs/", ScoringJobCreateView.as_view(), name="api-scoring-jobs"),
    path("scoring-jobs/<str:job_id>/", ScoringJobDetailView.as_view(), name="api-scoring-job"),
    path("scoring-jobs/<str:job_id>/result.csv", ScoringJobResultView.as_view(), name="api-scoring-job-result"),
    path("decisions/", DecisionListView.as_view(), name="api-decisions"),
    path("offers/", OfferListView.as_view(), name="api-offers"),
    path("models/", ModelVersionListView.as_view(), name="api-models"),
    path("training-jobs/", TrainingJobListView.as_view(), name="api-training-jobs"),
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="api-schema"),
    path(
        "docs/",
        LocalSwaggerView.as_view(url_name="api-schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
    re_path(r"", not_found_json),  # last: whatever matched nothing above
]
