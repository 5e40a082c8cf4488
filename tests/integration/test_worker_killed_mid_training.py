"""The bar: killing the worker while it trains never changes the champion, and the job ends failed."""

from __future__ import annotations

import pytest

from ml.jobs import training_job_request
from ml.models import ModelVersion, TrainingJob
from ml.registry import champion_of
from ml.services import churn_model_retrain
from tests.builders import store_labelled_base
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_killed_mid_training_leaves_the_champion_and_the_job_ends_failed(learning_loop):
    store_labelled_base(n=240)
    champion = churn_model_retrain(by="test")
    # Enough rows for the model search: the challenger trains for seconds, long enough to be killed in the act.
    store_labelled_base(n=2_400, seed=1)
    learning_loop.env.update(RETRAIN_MIN_LABELS="100", RETRAIN_AUC_TOLERANCE="1", RETRAIN_MAX_ECE="1")
    worker = learning_loop.start_worker()
    job = training_job_request(trigger=TrainingJob.Trigger.MANUAL, kinds=["churn"])

    def training():
        """the job to be training its challenger"""
        job.refresh_from_db()
        return job.status == TrainingJob.Status.RUNNING and job.stage == "training"

    wait_for(training, 45, worker=worker, every=0.05)
    worker.kill()

    job.refresh_from_db()
    assert job.status == TrainingJob.Status.RUNNING  # nobody has noticed yet
    assert champion_of("churn") == champion
    restarted = learning_loop.start_worker()  # the same node name: at start it fails what it was running

    def failed():
        """the restarted worker to fail the job"""
        job.refresh_from_db()
        return job.status == TrainingJob.Status.FAILED

    wait_for(failed, 30, worker=restarted)
    assert job.error == f"the worker ({job.worker}) was restarted while the job ran"
    assert champion_of("churn") == champion
    assert list(ModelVersion.objects.values_list("version", "status")) == [(1, "champion")]
