"""Panel fixtures: a customer with history, a catalog, and a fixed churn model so the real decision service runs fast.

Training a real model takes many seconds; the panel only needs a model that answers, so the
champion is a stand-in with a known probability and known per-feature contributions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ml.registry import LoadedModel, NoChampion, champions
from ml.schema import FeatureSchema
from tests.conftest import PASSWORD
from tests.factories import (
    ContractFactory,
    CustomerFactory,
    OfferFactory,
    ServiceEventFactory,
    TariffFactory,
)


@dataclass
class FixedChurnModel:
    """Answers every customer with the same probability; contributions name features of ml.features."""

    probability: float = 0.62
    schema: FeatureSchema = field(default_factory=lambda: FeatureSchema(numeric=()))
    contributions_by_feature: dict[str, float] = field(
        default_factory=lambda: {"complaints_90d": 0.9, "price_gap_vs_new": 0.5, "tenure_months": -0.2}
    )

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        return np.full(len(features), self.probability)

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        values = {name: self.contributions_by_feature.get(name, 0.0) for name in features.columns}
        return pd.DataFrame([values] * len(features), index=features.index)

    def explain(self, features: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        return self.predict_proba(features), self.contributions(features)


@pytest.fixture
def churn_model(monkeypatch) -> FixedChurnModel:
    model = FixedChurnModel()
    loaded = LoadedModel(version=SimpleNamespace(label="churn v-test"), model=model)

    def only_churn(kind: str) -> LoadedModel:
        if kind != "churn":
            raise NoChampion(f"no {kind} model in these tests")
        return loaded

    monkeypatch.setattr(champions, "get", only_churn)
    return model


@pytest.fixture
def catalog(db):
    """A new-customer tariff and three offers: two within an agent's authority, one for team leads."""
    TariffFactory(code="internet_tv", name="Internet + TV", monthly_fee_cents=4_500)
    TariffFactory(code="internet", name="Alleen internet", products=["internet"], monthly_fee_cents=3_500)
    return [
        OfferFactory(code="loyal-10", title_nl="Loyaliteitskorting 10%", title_en="Loyalty discount 10%"),
        OfferFactory(
            code="speed-up", kind="upgrade", title_nl="Gratis snelheid omhoog", title_en="Free speed upgrade",
            discount_percent=0, fixed_cost_cents=2_000,
        ),
        OfferFactory(
            code="half-price", title_nl="Halve prijs", title_en="Half price", discount_percent=50, authority_level=3
        ),
    ]  # fmt: skip


@pytest.fixture
def customer(db):
    customer = CustomerFactory(external_id="C-1001", display_name="Jan de Vries", phone="+31 6 1234 5678")
    ContractFactory(customer=customer, monthly_fee_cents=5_500, bundle="internet_tv")
    ServiceEventFactory(customer=customer, kind="complaint")
    ServiceEventFactory(customer=customer, kind="outage")
    return customer


@pytest.fixture
def logged_in(client):
    def log_in(user):
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return log_in
