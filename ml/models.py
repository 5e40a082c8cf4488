"""Django-side records of the learning machinery: model versions, training jobs and the simulator's hidden truth."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


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
    artifact_dir = models.CharField(max_length=500, help_text=_("Folder under MODEL_DIR holding the artifact files."))
    artifact_sha256 = models.CharField(max_length=64, help_text=_("Checksum of the artifact's manifest."))
    feature_schema = models.JSONField()
    metrics = models.JSONField(default=dict)
    training_window = models.JSONField(default=dict)
    training_rows = models.PositiveIntegerField(default=0)
    training_distribution = models.JSONField(
        default=dict, blank=True, help_text=_("Per feature, how the training rows were spread (for drift).")
    )
    training_job = models.ForeignKey(
        "TrainingJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="versions"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    status_reason = models.TextField(blank=True)
    promoted_by = models.CharField(max_length=150, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    files_removed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When prune_model_files removed the artifact files; the record stays.")
    )
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
    leave_probability = models.FloatField(help_text=_("Chance to leave at the coming renewal with no offer."))
    offer_effects = models.JSONField(help_text=_("Per offer kind: share of the leave chance that offer removes."))
    pushiness = models.FloatField(default=0.0, help_text=_("How hard this customer negotiates, 0 to 1."))
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"truth of customer {self.customer_id}"


class ModelPromotion(models.Model):
    """Every decision to promote a model version or not, with its reason."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="promotions")
    promoted = models.BooleanField()
    reason = models.TextField(help_text=_("Why, in English."))
    reason_phrase = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("The same reason as a phrase of ml.verdicts, for pages in other languages."),
    )
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    training_job = models.ForeignKey(
        "TrainingJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="promotions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{'promoted' if self.promoted else 'kept out'}: {self.reason}"

    @property
    def restored(self) -> bool:
        """A rollback brought this version back, rather than a promotion over the champion of its day."""
        return self.promoted and str(self.reason_phrase.get("code", "")).startswith("rolled_back")


class TrainingJob(models.Model):
    """One retraining run: what asked for it, how far it got, and what it decided.

    Written only by ml.jobs. At most one job waits in the queue and at most one runs: the
    constraint is the lock that keeps two retrains from training and promoting at once.
    """

    class Trigger(models.TextChoices):
        NIGHTLY = "nightly", "Nightly"
        OUTCOMES = "outcomes", "New outcomes"
        MANUAL = "manual", "Requested on the models page"
        COMMAND = "command", "Management command"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REFUSED = "refused", "Refused"
        CANCELLED = "cancelled", "Cancelled before a worker picked it up"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    kinds = models.JSONField(help_text=_('Model kinds to retrain, e.g. ["churn"].'))
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    seed = models.IntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=20, blank=True, help_text=_("A stage code of ml.training.STAGES."))
    stage_kind = models.CharField(max_length=12, blank=True, help_text=_("The model kind the stage is about."))
    percent = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    worker = models.CharField(max_length=200, blank=True, help_text=_("The worker or process that ran the job."))
    error = models.TextField(blank=True, help_text=_("Why the job failed or was refused."))
    results = models.JSONField(default=dict, blank=True, help_text=_("Per kind: version trained and the decision."))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_queued_and_one_running_training_job",
            ),
            models.CheckConstraint(condition=models.Q(percent__lte=100), name="training_job_percent_at_most_100"),
        ]

    def __str__(self) -> str:
        return f"training job {self.pk} ({self.status}, {self.percent}%)"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
