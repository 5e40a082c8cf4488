from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from ml.schema import SchemaMismatch
from ml.services import churn_model_retrain


class Command(BaseCommand):
    help = "Train the churn model on the labelled history, evaluate it, register it, and promote the first one."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, seed: int, **options):
        started = time.perf_counter()
        try:
            version = churn_model_retrain(by="train_models", seed=seed)
        except (ValueError, SchemaMismatch) as error:
            raise CommandError(str(error)) from error
        metrics = version.metrics
        self.stdout.write(
            f"{version.label} ({version.status}) trained on {version.training_rows} labelled outcomes "
            f"in {time.perf_counter() - started:.1f} s; holdout ({metrics['holdout']}, {metrics['rows']} rows): "
            f"ROC AUC {metrics['roc_auc']:.3f}, PR AUC {metrics['pr_auc']:.3f}, Brier {metrics['brier']:.3f}, "
            f"ECE {metrics['ece']:.3f}, lift@10% {metrics['lift_top10']:.2f}"
        )
