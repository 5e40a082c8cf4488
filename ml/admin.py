from django.contrib import admin

from ml.models import ModelPromotion, ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["kind", "version", "status", "training_rows", "promoted_by", "promoted_at", "created_at"]
    list_filter = ["kind", "status"]
    readonly_fields = ["artifact_dir", "artifact_sha256", "feature_schema", "metrics", "training_window"]


@admin.register(ModelPromotion)
class ModelPromotionAdmin(admin.ModelAdmin):
    list_display = ["model_version", "promoted", "reason", "created_at"]
