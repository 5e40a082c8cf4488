from django.contrib import admin

from ml.models import ModelPromotion, ModelVersion, TrainingJob


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["kind", "version", "status", "training_rows", "promoted_by", "promoted_at", "created_at"]
    list_filter = ["kind", "status"]
    readonly_fields = ["artifact_dir", "artifact_sha256", "feature_schema", "metrics", "training_window"]


@admin.register(ModelPromotion)
class ModelPromotionAdmin(admin.ModelAdmin):
    list_display = ["model_version", "promoted", "reason", "created_at"]


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    """Read-only: jobs change state only through the training services and the worker."""

    list_display = ["pk", "kinds", "trigger", "status", "stage", "percent", "worker", "created_at", "finished_at"]
    list_filter = ["status", "trigger"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
