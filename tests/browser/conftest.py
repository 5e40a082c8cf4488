"""Browser tests: Debian's Chromium, driven by Playwright, against a live server holding data made by each test.

The model is trained once for these tests (in a transaction that is rolled back) and registered as the
champion for every test, so each test gets a real trained model without paying for training again.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ml.churn import churn_model_train
from ml.features import build_features
from ml.models import ModelVersion
from ml.registry import champions, model_version_promote, model_version_register
from retention.selectors.catalog import new_customer_fees
from retention.selectors.history import labelled_history_frames
from tests.builders import store_labelled_base
from tests.factories import ContractFactory, CustomerFactory, OfferFactory, ServiceEventFactory, TariffFactory

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
PANEL_WIDTH = 380
# A Dutch call centre: the login page follows the browser, the panel follows the agent's own profile.
BROWSER_LOCALE = "nl-NL"
PAGE_HEIGHT = 800
# Generous for a loaded 2-core machine, short enough that a missing element fails the test quickly.
WAIT_MS = 15_000
ALLOW_ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@pytest.fixture(scope="package")
def chromium() -> Iterator[object]:
    """One Chromium for the browser tests; they skip where Debian's chromium package is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    # Playwright's sync API keeps an event loop running in this thread, and Django refuses ORM calls from a
    # thread with a running loop. The test's own queries are plain synchronous ones, so lift the guard,
    # and only while the browser runs.
    earlier = os.environ.get(ALLOW_ASYNC_UNSAFE)
    os.environ[ALLOW_ASYNC_UNSAFE] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if earlier is None:
            os.environ.pop(ALLOW_ASYNC_UNSAFE, None)
        else:
            os.environ[ALLOW_ASYNC_UNSAFE] = earlier


@pytest.fixture
def open_page(chromium, live_server) -> Iterator[Callable[..., object]]:
    """New pages on the live server in a Dutch browser, 380 CSS pixels wide; `javascript=False` for the plain forms.

    `zoom=2` shows the page as a 380-pixel frame at 200% browser zoom: 190 CSS pixels at two device pixels each.
    """
    contexts = []

    def open_(*, zoom: int = 1, javascript: bool = True):
        context = chromium.new_context(
            java_script_enabled=javascript,
            base_url=live_server.url,
            viewport={"width": PANEL_WIDTH // zoom, "height": PAGE_HEIGHT // zoom},
            device_scale_factor=zoom,
            locale=BROWSER_LOCALE,
        )
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot() -> Callable[[object, str], Path]:
    """Save a full-page screenshot under test-artifacts/ (kept after the run, ignored by git)."""

    def take(page, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# --- data ---------------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def trained_churn_model(chromium, django_db_setup, django_db_blocker) -> dict:
    """A churn model trained once on a small labelled base that is rolled back afterwards, ready to register.

    It asks for the browser first, so that without Chromium the tests skip before training anything.
    One thread: on a busy two-core machine that also runs the live server and Chromium, two threads
    make this training minutes instead of a second. The panel needs a model, not its holdout metrics.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        store_labelled_base()
        rows, contracts, events, labels = labelled_history_frames()
        features = build_features(rows, contracts, events, new_customer_fees())
        model = churn_model_train(features, labels, seed=0, params={"nthread": 1})
        transaction.set_rollback(True)
    renewals = pd.to_datetime(rows["as_of"], utc=True)
    return {
        "model": model,
        "metrics": {"holdout": "none (trained for the browser tests)"},
        "training_window": {"from": renewals.min().isoformat(), "to": renewals.max().isoformat()},
        "training_rows": len(labels),
    }


@pytest.fixture
def churn_champion(transactional_db, trained_churn_model) -> Iterator[ModelVersion]:
    """The trained model, registered and promoted in this test's database."""
    champions.clear()
    version = model_version_register(kind=ModelVersion.Kind.CHURN, **trained_churn_model)
    yield model_version_promote(version=version, by="test", reason="browser tests")
    champions.clear()


@pytest.fixture
def catalog(transactional_db) -> list:
    """New-customer tariffs and three offers: two within an agent's authority (€ 51 and € 20), one for team leads."""
    TariffFactory(code="internet_tv", name="Internet + TV", products=["internet", "tv"], monthly_fee_cents=4_500)
    TariffFactory(code="internet", name="Alleen internet", products=["internet"], monthly_fee_cents=3_500)
    return [
        OfferFactory(
            code="loyal-10", title_nl="Loyaliteitskorting 10%", title_en="Loyalty discount 10%",
            discount_percent=10, duration_months=6, prior_uplift=0.3,
        ),
        OfferFactory(
            code="speed-up", kind="upgrade", title_nl="Gratis snelheid omhoog", title_en="Free speed upgrade",
            discount_percent=0, duration_months=0, fixed_cost_cents=2_000, prior_uplift=0.15,
        ),
        OfferFactory(
            code="quarter-off", title_nl="Kwart korting", title_en="A quarter off",
            discount_percent=25, duration_months=6, authority_level=2, prior_uplift=0.5,
        ),
    ]  # fmt: skip


@pytest.fixture
def customer(transactional_db):
    """An unhappy customer who pays well above a new customer's price and whose contract ends in five weeks."""
    customer = CustomerFactory(
        external_id="C-1001", display_name="Jan de Vries", phone="+31 6 1234 5678", products=["internet", "tv"]
    )
    ContractFactory(
        customer=customer,
        monthly_fee_cents=8_500,
        bundle="internet_tv",
        end_date=timezone.localdate() + dt.timedelta(days=35),
    )
    for days in (3, 12, 40):
        ServiceEventFactory(customer=customer, kind="complaint", occurred_at=timezone.now() - dt.timedelta(days=days))
    ServiceEventFactory(customer=customer, kind="outage")
    return customer
