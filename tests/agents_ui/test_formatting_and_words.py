import datetime as dt
import gettext

import pandas as pd
import pytest
from django.conf import settings
from django.utils import translation

from agents_ui import labels
from agents_ui.presenters import in_language, talking_points, top_reasons
from agents_ui.review.presenters import fairness_tables, metric_text
from agents_ui.talking_points import GENERAL_TALKING_POINT, TALKING_POINTS, talking_point
from agents_ui.templatetags.panel_tags import (
    euro,
    figures_apart,
    nl_date,
    nl_datetime,
    percent,
    signed_euro,
    tenure,
)
from ml.fairness import Comparison, FairnessReport, GroupCell
from ml.reasons import phrase
from retention.models import Decision, DecisionAction, Offer

REASON_CODES = [
    "price_gap", "discount_ending", "complaints", "outages", "contacts", "nps", "payment_problems",
    "competitor_offer", "contract_end", "tenure", "contract_type", "bundle", "products", "monthly_fee",
    "segment", "value_tier", "region",
]  # fmt: skip


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (123_450, "€\u00a01.234,50"),
        (5, "€\u00a00,05"),
        (0, "€\u00a00,00"),
        (-1_250, "€\u00a0-12,50"),
        (100_000_000, "€\u00a01.000.000,00"),
    ],
)
def test_money_is_written_the_dutch_way(cents, text):
    with translation.override("nl"):  # a page another test rendered may have left its language active
        assert euro(cents) == text


def test_money_is_written_the_english_way_in_english_as_the_reasons_and_percentages_are():
    with translation.override("en"):
        assert [euro(cents) for cents in (123_450, -1_250, 0)] == ["€1,234.50", "-€12.50", "€0.00"]
        assert signed_euro(-2_760) == "\u2212\u00a0€27.60"


def test_unknown_money_is_blank():
    assert euro(None) == ""


def test_dates_are_day_month_year_in_local_time():
    assert nl_date(dt.date(2026, 11, 23)) == "23-11-2026"
    assert nl_date(dt.datetime(2026, 11, 22, 23, 30, tzinfo=dt.UTC)) == "23-11-2026"
    assert nl_datetime(dt.datetime(2026, 11, 23, 13, 5, tzinfo=dt.UTC)) == "23-11-2026 14:05"
    assert nl_date(None) == ""


@pytest.mark.parametrize(
    ("months", "text"),
    [(0, "0 months"), (1, "1 month"), (12, "1 year"), (29, "2 years and 5 months"), (None, "")],
)
def test_tenure_reads_as_years_and_months(months, text):
    with translation.override("en"):
        assert tenure(months) == text


def test_tenure_in_dutch():
    with translation.override("nl"):
        assert tenure(29) == "2 jaar en 5 maanden"


@pytest.mark.parametrize("code", REASON_CODES)
def test_every_reason_code_has_its_own_talking_point_in_both_languages(code):
    assert code in TALKING_POINTS
    with translation.override("en"):
        english = talking_point(code)
    with translation.override("nl"):
        dutch = talking_point(code)
    assert english != dutch
    assert "switch" not in english.lower()


def test_crm_attributes_and_new_codes_still_get_a_talking_point():
    assert talking_point("attribute:plan_speed")
    assert talking_point("something_new") == str(GENERAL_TALKING_POINT)


def test_without_a_reason_that_raises_risk_the_agent_still_gets_a_talking_point():
    reasons = top_reasons([{"code": "tenure", "text": {"nl": "Lang klant", "en": "Long"}, "impact": -0.4}])

    assert talking_points(reasons) == [str(GENERAL_TALKING_POINT)]


def test_text_falls_back_to_the_other_language_then_the_code():
    with translation.override("en"):
        assert in_language({"nl": "alleen Nederlands"}) == "alleen Nederlands"
        assert in_language({}, fallback="price_gap") == "price_gap"


MISSING = object()


class Untranslated(gettext.NullTranslations):
    def gettext(self, message):
        return MISSING


def missing_in_dutch_catalog(words: dict) -> list[str]:
    """Codes whose (English source) word has no translation in the compiled nl catalog."""
    with (settings.BASE_DIR / "agents_ui" / "locale" / "nl" / "LC_MESSAGES" / "django.mo").open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)
    catalog.add_fallback(Untranslated())
    with translation.override("en"):
        sources = {code: str(word) for code, word in words.items()}
    return [code for code, source in sources.items() if catalog.gettext(source) is MISSING]


@pytest.mark.parametrize(
    ("mapping", "values"),
    [(labels.ACTION_KINDS, DecisionAction.Kind.values), (labels.OVERRIDE_REASONS, DecisionAction.OverrideReason.values),
     (labels.CHANNELS, Decision.Channel.values), (labels.OFFER_KINDS, Offer.Kind.values),
     (labels.RISK_BANDS, ["low", "medium", "high"]), (labels.BUDGET_LEVELS, ["green", "amber", "red"])],
)  # fmt: skip
def test_every_stored_code_has_a_word_in_the_compiled_dutch_catalog(mapping, values):
    assert set(mapping) == set(values)
    assert missing_in_dutch_catalog(mapping) == []


def test_every_talking_point_is_in_the_compiled_dutch_catalog():
    assert missing_in_dutch_catalog(TALKING_POINTS) == []


def test_a_rate_is_rounded_to_a_tenth_of_a_percent_not_cut_off():
    with translation.override("nl"):
        assert metric_text("save_rate", 1 / 6) == "16,7%"
        assert metric_text("save_rate", 0.5) == "50,0%"


@pytest.mark.parametrize(
    ("share", "language", "text"),
    [(5 / 8, "nl", "62,5%"), (1 / 6, "nl", "16,7%"), (0.0625, "en", "6.3%"), (1.0, "nl", "100,0%"), (None, "nl", "–")],
)
def test_a_share_reads_as_a_percentage_with_one_decimal_and_halves_rounded_up(share, language, text):
    with translation.override(language):
        assert percent(share) == text


def test_fairness_groups_of_an_order_of_their_own_are_shown_in_it():
    cells = tuple(GroupCell(group=tier, value=0.5, size=40, judged=True) for tier in ("high", "low", "medium"))
    comparison = Comparison(
        risk_band="high", attribute="value_tier", metric="save_rate", cells=cells, ratio=1.0, difference=0.0,
        flagged=False,
    )  # fmt: skip
    report = FairnessReport(comparisons=(comparison,), threshold=0.8, min_group_size=30, rows=120)

    assert fairness_tables(report)[0].groups == ["low", "medium", "high"]


@pytest.mark.parametrize(
    ("months", "facts", "reason"),
    [
        (0.4, "0 months", "Customer for only 0 months"),
        (11.9, "11 months", "Customer for only 11 months"),
        (23.6, "1 year and 11 months", "Customer for only 23 months"),
    ],
)
def test_the_tenure_reason_counts_the_whole_months_the_customer_facts_show(months, facts, reason):
    with translation.override("en"):
        assert tenure(months) == facts
    assert phrase("tenure", pd.Series({"tenure_months": months}))["en"] == reason


def test_figures_side_by_side_show_as_many_decimals_as_tell_them_apart():
    with translation.override("nl"):
        assert figures_apart(0.73412, 0.73438) == "0,7341 / 0,7344"
        assert figures_apart(0.7341, 0.731) == "0,734 / 0,731"
    with translation.override("en"):
        assert figures_apart(0.026, 0.026) == "0.026 / 0.026"
