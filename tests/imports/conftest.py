"""Small CSV files written per test, and the mapping they are read with."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from retention.mapping import Mapping, mapping_parse

AS_OF = date(2024, 1, 31)
HEADER = "customerID,gender,SeniorCitizen,tenure,Contract,MonthlyCharges,TotalCharges,Partner,Churn"


def mapping_dict(**overrides) -> dict:
    """The shape of the telco mapping, which each test bends as it needs."""
    data = {
        "id": "customerID",
        "label": {"column": "Churn", "churned": ["Yes"]},
        "fields": {"tenure_months": "tenure", "monthly_fee": "MonthlyCharges", "contract_type": "Contract"},
        "protected": ["gender", "SeniorCitizen"],
        "exclude": ["TotalCharges"],
        "attributes": "*",
    }
    data.update(overrides)
    return data


@pytest.fixture
def telco_mapping() -> Mapping:
    return mapping_parse(mapping_dict())


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write lines (header first) to a new CSV file and return its path."""
    counter = iter(range(1000))

    def write(*lines: str, name: str | None = None) -> Path:
        path = tmp_path / (name or f"file{next(counter)}.csv")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write
