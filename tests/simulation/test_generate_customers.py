"""generate_customers and truths_store: the simulated base and its hidden truth in the database."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from ml.models import CustomerTruth
from ml.simulate import TariffSpec, simulate_base
from retention.models import Contract, Customer, RenewalResult, ServiceEvent
from retention.services.catalog import catalog_load
from retention.services.customers import customers_upsert
from retention.services.simulation import truths_store

TARIFFS = {"internet_tv": TariffSpec("internet_tv", ("internet", "tv"), 5_250)}


@pytest.fixture
def catalog(db):
    catalog_load(path=Path(settings.BASE_DIR) / "fixtures" / "catalog.json")


def generate(n: int, seed: int) -> str:
    out = StringIO()
    call_command("generate_customers", n=n, seed=seed, stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    models = (Customer, Contract, ServiceEvent, RenewalResult, CustomerTruth)
    return {model.__name__: model.objects.count() for model in models}


def simulated(n: int = 5):
    return simulate_base(n=n, seed=1, today=dt.date(2025, 6, 2), tariffs=TARIFFS)


def test_generate_customers_stores_n_customers_with_their_history_and_truth(catalog):
    output = generate(40, 3)
    assert Customer.objects.count() == 40
    assert CustomerTruth.objects.count() == 40
    assert ServiceEvent.objects.exists()
    assert RenewalResult.objects.filter(source="simulation").exists()
    assert "Customers: 40 (40 new)" in output


def test_generating_again_with_the_same_seed_adds_no_rows(catalog):
    generate(30, 4)
    before = row_counts()
    output = generate(30, 4)
    assert row_counts() == before
    assert "(0 new)" in output


def test_generate_customers_without_tariffs_asks_to_run_seed_demo_first(db):
    with pytest.raises(CommandError, match="seed_demo"):
        generate(10, 0)


def test_the_stored_truth_is_the_simulated_one(db):
    customers = simulated()
    customers_upsert(records=[c.record for c in customers], source="simulation")
    truths_store(customers=customers)
    first = customers[0]
    truth = CustomerTruth.objects.get(customer__external_id=first.record.external_id)
    assert (truth.persona, truth.leave_probability, truth.pushiness) == (
        first.persona,
        first.leave_probability,
        first.pushiness,
    )
    assert truth.offer_effects == first.offer_effects


def test_storing_a_truth_again_replaces_it(db):
    customers = simulated()
    customers_upsert(records=[c.record for c in customers], source="simulation")
    truths_store(customers=customers)
    customers[0].persona = "loyal" if customers[0].persona != "loyal" else "deal_seeker"
    truths_store(customers=customers)
    assert CustomerTruth.objects.count() == 5
    assert CustomerTruth.objects.get(customer__external_id=customers[0].record.external_id).persona == (
        customers[0].persona
    )


def test_a_truth_for_a_customer_not_stored_is_refused(db):
    with pytest.raises(ValidationError, match="not stored"):
        truths_store(customers=simulated())
    assert not CustomerTruth.objects.exists()


def test_a_truth_out_of_range_is_refused(db):
    customers = simulated()
    customers_upsert(records=[c.record for c in customers], source="simulation")
    customers[2].leave_probability = 1.5
    with pytest.raises(ValidationError, match="leave_probability"):
        truths_store(customers=customers)
    assert not CustomerTruth.objects.exists()
