from django.urls import path

from agents_ui.review import models_views, views

urlpatterns = [
    path("", views.home, name="review"),
    path("log/", views.offer_log, name="review-log"),
    path("log.csv", views.offer_log_csv, name="review-log-csv"),
    path("kpis/", views.kpis, name="review-kpis"),
    path("escalations/", views.escalations, name="review-escalations"),
    path("escalations/count/", views.escalations_count, name="review-escalations-count"),
    path("budget/", views.budget, name="review-budget"),
    path("fairness/", views.fairness, name="review-fairness"),
    path("models/", models_views.models_page, name="review-models"),
    path("models/retrain/", models_views.retrain, name="review-models-retrain"),
    path("models/jobs/<int:job_id>/cancel/", models_views.cancel_job, name="review-models-cancel-job"),
    path("models/<str:kind>/<int:version>/promote/", models_views.promote, name="review-models-promote"),
    path("models/<str:kind>/rollback/", models_views.rollback, name="review-models-rollback"),
]
