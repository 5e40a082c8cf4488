"""Django-side records of the learning machinery: model versions and the simulator's hidden truth."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ModelVersion(models.Model):
    class Kind(models.TextChoices):
        CHURN = "churn", "Churn"
        ACCEPTANCE = "acceptance", "Offer response"

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        CHAMPION = "champion", "Champion"
        RETIRED = "retired", "Retired"
        REJECTED = "rejected", "Rejected"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    version = models.PositiveIntegerField()
    artifact_dir = models.CharField(max_length=500, help_text="Folder under MODEL_DIR holding the artifact files.")
    artifact_sha256 = models.CharField(max_length=64, help_text="Checksum of the artifact's manifest.")
    feature_schema = models.JSONField()
    metrics = models.JSONField(default=dict)
    training_window = models.JSONField(default=dict)
    training_rows = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    status_reason = models.TextField(blank=True)
    promoted_by = models.CharField(max_length=150, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="one_number_per_model_version"),
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(status="champion"), name="one_champion_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version} ({self.status})"

    @property
    def label(self) -> str:
        return f"{self.kind}-v{self.version}"


class CustomerTruth(models.Model):
    """The synthetic customer's hidden response. Read only by the simulator; no model ever sees it."""

    customer = models.OneToOneField("retention.Customer", on_delete=models.CASCADE, related_name="+")
    persona = models.CharField(max_length=20)
    leave_probability = models.FloatField(help_text="Chance to leave at the coming renewal with no offer.")
    offer_effects = models.JSONField(help_text="Per offer kind: share of the leave chance that offer removes.")
    pushiness = models.FloatField(default=0.0, help_text="How hard this customer negotiates, 0 to 1.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"truth of customer {self.customer_id}"


class ModelPromotion(models.Model):
    """Every decision to promote a model version or not, with its reason."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="promotions")
    promoted = models.BooleanField()
    reason = models.TextField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{'promoted' if self.promoted else 'kept out'}: {self.reason}"
