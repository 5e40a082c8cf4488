"""The loop end to end: renewal results posted through the API lead a real worker to retrain and promote,
and the next recommendation is made with the new champion."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from ml.models import ModelVersion, TrainingJob
from retention.models import Customer
from retention.services.customers import customers_upsert
from tests.builders import labelled_records, store_labelled_base
from tests.factories import OfferFactory, TariffFactory
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_renewal_results_from_the_crm_retrain_and_promote_the_model_the_next_recommendation_uses(
    learning_loop, api_client
):
    TariffFactory()
    OfferFactory(code="korting-10", discount_percent=10, duration_months=6)
    store_labelled_base(n=240)
    call_command("train_models", kind=["churn"], stdout=io.StringIO(), stderr=io.StringIO())
    # Advice is for a customer who has not left.
    current = Customer.objects.still_customers().order_by("pk").first().external_id
    first = api_client.post("/api/v1/recommendations/", {"customer_id": current, "channel": "phone"}, format="json")
    assert first.json()["model_version"] == "churn-v1"

    # The judgement is tested on its own; here every challenger passes, so this test is about the loop.
    learning_loop.env.update(
        RETRAIN_AFTER_OUTCOMES="100", RETRAIN_MIN_LABELS="100", RETRAIN_AUC_TOLERANCE="1", RETRAIN_MAX_ECE="1"
    )
    worker = learning_loop.start_worker()
    newcomers = labelled_records(n=120, seed=1)
    results = [{"customer_id": r.external_id, "result": r.renewals[0].result, "date": str(r.renewals[0].date)}
               for r in newcomers]  # fmt: skip
    for record in newcomers:
        record.renewals = []
    customers_upsert(records=newcomers, source="simulation")
    response = api_client.post("/api/v1/renewals/", results, format="json")
    assert response.json() == {"received": 120, "created": 120, "already_recorded": 0}

    def retrained():
        """a retrain triggered by the new outcomes to finish"""
        return TrainingJob.objects.filter(trigger="outcomes", status__in=["succeeded", "failed", "refused"]).first()

    job = wait_for(retrained, 45, worker=worker)
    assert job.status == TrainingJob.Status.SUCCEEDED, job.error
    assert job.results["churn"]["outcome"] == "promoted"
    champion = ModelVersion.objects.get(kind="churn", status="champion")
    assert (champion.version, champion.training_rows) == (2, 360)

    after = api_client.post("/api/v1/recommendations/", {"customer_id": current, "channel": "phone"}, format="json")
    assert after.status_code == 201, after.content
    assert after.json()["model_version"] == "churn-v2"
