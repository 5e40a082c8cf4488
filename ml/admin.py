from django.contrib import admin

from ml.models import ModelPromotion, ModelVersion, TrainingJob
from retention.admin import ReadOnlyAdmin


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    """Read-only: a version is trained, promoted and rolled back through the models page and the commands, which
    check its artifact and record who decided and why; a status edited here would skip both."""

    list_display = ["kind", "version", "status", "training_rows", "promoted_by", "promoted_at", "created_at"]
    list_filter = ["kind", "status"]


@admin.register(ModelPromotion)
class ModelPromotionAdmin(ReadOnlyAdmin):
    """Read-only: the record of who promoted what, and why."""

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
