"""`manage.py fairness_report`: the same comparison as the review page, as a table or JSON, for a period."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from retention.models import DecisionAction, ProtectedAttributes
from retention.services.decisions import decision_action_record
from tests.agents_ui.decisions import days_ago, stored_decision
from tests.factories import CustomerFactory, RenewalResultFactory

pytestmark = pytest.mark.django_db


def decision(
    agent, *, gender: str | None, value_tier: str = "medium", offered: bool, renewed: bool | None = None, **fields
):
    customer = CustomerFactory(value_tier=value_tier)
    if gender is not None:
        ProtectedAttributes.objects.create(customer=customer, values={"gender": gender, "age_band": "35-49"})
    made = stored_decision(customer=customer, agent=agent, renewal_fee_cents=5_000, **fields)
    if offered:
        decision_action_record(decision=made, kind="presented", offer_code="loyal-10", agent=agent)
    if renewed is not None:
        result = "renewed" if renewed else "churned"
        RenewalResultFactory(customer=customer, result=result, date=timezone.localdate(made.as_of))
    return made


def offers_presented(decisions: list, agent) -> None:
    """The recommended offer presented on each decision: on the first through the action service, on the others
    as copies of the row it wrote, in one insert. The report reads these rows; the service's checks of each
    offer (some sixteen queries) are not what it is about."""
    first, *others = decisions
    decision_action_record(decision=first, kind="presented", offer_code="loyal-10", agent=agent)
    row = first.actions.get()
    DecisionAction.objects.bulk_create(
        DecisionAction(decision=other, kind=row.kind, offer_code=row.offer_code, agent=agent, channel=row.channel)
        for other in others
    )


@pytest.fixture
def unfair(agent, settings):
    """Forty high-risk decisions: 16 of 20 men got an offer, 6 of 20 women did; everyone renewed."""
    settings.FAIRNESS_MIN_GROUP_SIZE = 10
    offered = []
    for number in range(20):
        man = decision(agent, gender="male", offered=False, renewed=True)
        woman = decision(agent, gender="female", offered=False, renewed=True)
        if number < 16:
            offered.append(man)
        if number < 6:
            offered.append(woman)
    offers_presented(offered, agent)


def run(*arguments: str) -> str:
    out = StringIO()
    call_command("fairness_report", *arguments, stdout=out)
    return out.getvalue()


def report_json(*arguments: str) -> dict:
    return json.loads(run("--json", *arguments))


def comparison(data: dict, *, metric: str, attribute: str = "gender", risk_band: str = "high") -> dict:
    (found,) = [
        c
        for c in data["comparisons"]
        if (c["metric"], c["attribute"], c["risk_band"]) == (metric, attribute, risk_band)
    ]
    return found


def test_an_unfair_offer_rate_is_flagged_in_json(unfair):
    data = report_json()

    offer_rate = comparison(data, metric="offer_rate")
    assert offer_rate["flagged"] is True
    assert offer_rate["ratio"] == pytest.approx(0.3 / 0.8)
    assert {cell["group"]: (cell["value"], cell["size"]) for cell in offer_rate["cells"]} == {
        "female": (pytest.approx(0.3), 20),
        "male": (pytest.approx(0.8), 20),
    }
    assert comparison(data, metric="save_rate")["ratio"] == pytest.approx(1.0)
    assert data["rows"] == 40 and data["threshold"] == 0.8 and data["min_group_size"] == 10


def test_segments_and_every_protected_attribute_are_compared(unfair):
    data = report_json()

    attributes = {c["attribute"] for c in data["comparisons"]}
    assert attributes == {"gender", "age_band", "segment", "value_tier"}
    assert not comparison(data, metric="offer_rate", attribute="segment")["flagged"]  # one group: nothing to compare


def test_the_text_table_marks_the_flagged_metric(unfair):
    text = run()

    assert "ratio threshold 0.80" in text
    assert "groups with fewer than 10 rows (*) are shown but not flagged" in text
    line = next(
        line for line in text.splitlines() if line.startswith("high") and "gender" in line and "offer rate" in line
    )
    assert "female 30.0% (20)" in line and "male 80.0% (20)" in line
    assert "0.37" in line and "50.0 pt" in line and line.endswith("FLAGGED")


def test_a_flag_on_a_gap_chance_could_make_says_so(agent, settings):
    settings.FAIRNESS_MIN_GROUP_SIZE = 10
    for number in range(12):
        decision(agent, gender="male", offered=number < 3)
        decision(agent, gender="female", offered=number < 1)

    data = report_json()
    line = next(
        line for line in run().splitlines() if line.startswith("high") and " gender " in line and "offer rate" in line
    )

    offer_rate = comparison(data, metric="offer_rate")
    assert offer_rate["flagged"] and offer_rate["may_be_chance"] and offer_rate["adjusted_p_value"] > 0.05
    assert offer_rate["adjusted_p_value"] >= offer_rate["p_value"]
    assert line.endswith("FLAGGED (may be chance)")


def test_the_threshold_option_overrides_the_setting(unfair):
    assert not comparison(report_json("--threshold", "0.3"), metric="offer_rate")["flagged"]


def test_groups_below_the_minimum_size_are_marked_and_not_flagged(unfair, settings):
    settings.FAIRNESS_MIN_GROUP_SIZE = 25

    text = run()

    assert "female 30.0% (20*)" in text
    assert "FLAGGED" not in text


def test_the_period_selects_decisions_by_local_day(agent, settings):
    settings.FAIRNESS_MIN_GROUP_SIZE = 1
    decision(agent, gender="female", offered=False, as_of=days_ago(10))
    decision(agent, gender="male", offered=True, as_of=days_ago(10))
    decision(agent, gender="female", offered=True, as_of=days_ago(1))
    ten_days_ago = timezone.localdate(days_ago(10)).isoformat()

    assert report_json("--until", ten_days_ago)["rows"] == 2
    assert report_json("--since", timezone.localdate().isoformat())["rows"] == 0
    assert report_json("--since", ten_days_ago, "--until", ten_days_ago)["period"] == {
        "since": ten_days_ago,
        "until": ten_days_ago,
    }


def test_customers_without_protected_attributes_still_count_for_segments(agent, settings):
    settings.FAIRNESS_MIN_GROUP_SIZE = 1
    decision(agent, gender=None, value_tier="high", offered=True)
    decision(agent, gender=None, value_tier="low", offered=False)

    data = report_json()

    assert {c["attribute"] for c in data["comparisons"]} == {"segment", "value_tier"}
    assert comparison(data, metric="offer_rate", attribute="value_tier")["flagged"]


def test_an_empty_period_says_so():
    assert "No decisions with a recorded attribute in this period." in run(
        "--since", "2020-01-01", "--until", "2020-01-31"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--since", "yesterday"], "not a date"),
        (["--since", "2026-03-10", "--until", "2026-03-01"], "before --since"),
        (["--threshold", "1.5"], "at most 1"),
        (["--threshold", "zero"], "is not a number"),
        (["--threshold", "nan"], "not above 0 and at most 1"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(arguments, message):
    with pytest.raises(CommandError, match=message):
        run(*arguments)


def test_the_date_of_a_decision_is_its_local_day(agent, settings):
    """23:30 UTC on 31 March is 1 April in Amsterdam: the decision belongs to 1 April."""
    settings.FAIRNESS_MIN_GROUP_SIZE = 1
    decision(agent, gender="female", offered=True, as_of=dt.datetime(2026, 3, 31, 23, 30, tzinfo=dt.UTC))

    assert report_json("--since", "2026-04-01", "--until", "2026-04-01")["rows"] == 1
    assert report_json("--until", "2026-03-31")["rows"] == 0
