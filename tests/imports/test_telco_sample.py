"""The IBM Telco sample imports whole with the shipped mapping. Needs TELCO_CSV pointing at the file."""

from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from retention.models import Contract, Customer, ProtectedAttributes, RenewalResult

TELCO_MAPPING = Path(__file__).resolve().parents[2] / "fixtures" / "mappings" / "telco.yaml"


@pytest.fixture
def telco_csv() -> Path:
    path = Path(os.environ.get("TELCO_CSV", ""))
    if not os.environ.get("TELCO_CSV") or not path.is_file():
        pytest.skip("set TELCO_CSV to the IBM Telco Customer Churn CSV to run this test")
    return path


@pytest.mark.django_db
def test_the_telco_sample_imports_every_customer_and_churner(telco_csv):
    out = StringIO()

    call_command(
        "import_customers", str(telco_csv), "--mapping", str(TELCO_MAPPING), "--as-of", "2024-01-31", stdout=out
    )

    assert out.getvalue().startswith("7043 rows read: 7043 created, 0 updated, 0 unchanged, 0 skipped, 7043 labelled")
    assert Customer.objects.count() == 7043
    assert Contract.objects.count() == 7043
    assert ProtectedAttributes.objects.count() == 7043
    assert RenewalResult.objects.filter(result="churned").count() == 1869
    assert RenewalResult.objects.filter(result="renewed").count() == 7043 - 1869
    attributes = Customer.objects.get(external_id="7590-VHVEG").attributes
    assert attributes["Partner"] == "Yes"
    assert not {"gender", "SeniorCitizen", "tenure", "Churn"} & set(attributes)
    assert attributes["TotalCharges"] == 29.85
    assert Customer.objects.get(external_id="4472-LVYGI").attributes.get("TotalCharges") is None  # a blank
