import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from retention.models import DecisionAction
from retention.selectors.panel import (
    BudgetStatus,
    customer_card,
    customer_search,
    customers_with_contract_ending,
    month_start,
    recent_offers,
    team_budget_status,
)
from tests.agents_ui.decisions import days_ago, stored_decision
from tests.factories import (
    AgentProfileFactory,
    ContractFactory,
    CustomerFactory,
    RenewalResultFactory,
    ServiceEventFactory,
    TariffFactory,
    TeamFactory,
    UserFactory,
)

AMSTERDAM = zoneinfo.ZoneInfo("Europe/Amsterdam")


@pytest.mark.django_db
def test_search_puts_the_exact_customer_number_first():
    CustomerFactory(external_id="C-10", display_name="Anna")
    CustomerFactory(external_id="C-1", display_name="Zoë")

    assert [c.external_id for c in customer_search(query="C-1")] == ["C-1"]
    assert customer_search(query="C") == []  # a part of a number names nobody


@pytest.mark.django_db
def test_a_short_number_is_not_taken_for_a_phone_number():
    CustomerFactory(external_id="X-1", display_name="Kees", phone="0612345678")

    assert customer_search(query="123") == []


@pytest.mark.django_db
def test_a_name_is_found_whole_or_by_a_part_of_two_words_or_more():
    CustomerFactory(external_id="X-1", display_name="Lisa de Vries", phone="")
    CustomerFactory(external_id="X-2", display_name="Li", phone="")

    assert [c.external_id for c in customer_search(query="Li")] == ["X-2"]  # the whole name
    assert [c.external_id for c in customer_search(query="  lisa  DE vries ")] == ["X-1"]
    assert [c.external_id for c in customer_search(query="de Vries")] == ["X-1"]
    assert customer_search(query="Lisa") == [] and customer_search(query="Vries") == []  # one word names too many
    assert customer_search(query="a d") == []  # two words, too few letters


@pytest.mark.django_db
def test_a_number_or_phone_is_found_whole_and_never_by_a_part():
    CustomerFactory(external_id="NL8656687", display_name="Kees", phone="+31 6 1234 5678")

    assert [c.external_id for c in customer_search(query="8656687")] == ["NL8656687"]  # without its letters
    assert [c.external_id for c in customer_search(query="06-12345678")] == ["NL8656687"]
    for part in ("NL865", "86566", "656687", "06-1234", "12345678"):
        assert customer_search(query=part) == [], part


@pytest.mark.django_db
def test_an_empty_search_finds_nobody():
    CustomerFactory()

    assert customer_search(query="   ") == []


@pytest.mark.django_db
def test_card_counts_only_complaints_and_outages_of_the_last_90_days():
    customer = CustomerFactory()
    ServiceEventFactory(customer=customer, kind="complaint", occurred_at=days_ago(10))
    ServiceEventFactory(customer=customer, kind="complaint", occurred_at=days_ago(91))
    ServiceEventFactory(customer=customer, kind="outage", occurred_at=days_ago(89))
    ServiceEventFactory(customer=customer, kind="contact", occurred_at=days_ago(1))

    card = customer_card(customer=customer)

    assert (card.complaints_90d, card.outages_90d) == (1, 1)


@pytest.mark.django_db
def test_card_price_takes_off_a_running_discount_but_not_an_ended_one():
    today = timezone.localdate()
    TariffFactory(code="internet_tv", monthly_fee_cents=4_500)
    running = ContractFactory(monthly_fee_cents=6_000, discount_cents=1_000, discount_end=today).customer
    ended = ContractFactory(
        monthly_fee_cents=6_000, discount_cents=1_000, discount_end=today - dt.timedelta(days=1)
    ).customer

    assert customer_card(customer=running).pays_more_than_new_customer_cents == 500
    assert customer_card(customer=ended).pays_more_than_new_customer_cents == 1_500


@pytest.mark.django_db
def test_card_gives_no_new_customer_price_for_a_bundle_no_longer_sold_but_keeps_its_name():
    TariffFactory(code="internet_tv", name="Internet + TV", active_until=timezone.localdate() - dt.timedelta(days=1))
    customer = ContractFactory(bundle="internet_tv").customer

    card = customer_card(customer=customer)

    assert (card.bundle_name, card.new_customer_monthly_cents) == ("Internet + TV", None)


@pytest.mark.django_db
def test_card_uses_the_latest_active_contract_and_tenure_in_whole_months():
    customer = CustomerFactory(signup_date=timezone.localdate() - dt.timedelta(days=400))
    ContractFactory(customer=customer, bundle="old", start_date=dt.date(2020, 1, 1), status="ended")
    ContractFactory(customer=customer, bundle="internet_tv", start_date=dt.date(2021, 1, 1))
    ContractFactory(customer=customer, bundle="mobile", start_date=dt.date(2023, 1, 1))

    card = customer_card(customer=customer)

    assert card.contract.bundle == "mobile"
    assert card.tenure_months == 13
    assert card.new_customer_monthly_cents is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("results", "contract_start", "left"),
    [
        ([], None, False),
        ([("renewed", 300)], dt.date(2020, 1, 1), False),
        ([("renewed", 300), ("churned", 30)], dt.date(2020, 1, 1), True),  # the contract was never closed
        ([("renewed", 300), ("churned", 30)], None, True),
        ([("churned", 300), ("renewed", 30)], dt.date(2020, 1, 1), False),  # came back and renewed
        ([("churned", 30)], "after", False),  # a contract started since
    ],
)
def test_the_card_says_when_the_records_have_the_customer_as_gone(results, contract_start, left):
    today = timezone.localdate()
    customer = CustomerFactory()
    for result, days in results:
        RenewalResultFactory(customer=customer, result=result, date=today - dt.timedelta(days=days))
    if contract_start is not None:
        start = today - dt.timedelta(days=10) if contract_start == "after" else contract_start
        ContractFactory(customer=customer, start_date=start)

    card = customer_card(customer=customer)

    assert card.left_on == (today - dt.timedelta(days=results[-1][1]) if left else None)
    assert card.last_renewal == (customer.renewal_results.order_by("-date").first() if results else None)


@pytest.mark.django_db
def test_a_customer_without_contract_has_an_empty_card():
    card = customer_card(customer=CustomerFactory(signup_date=None))

    assert (card.contract, card.tenure_months, card.pays_monthly_cents, card.bundle_name) == (None, None, None, "")


@pytest.mark.django_db
def test_recent_offers_pair_each_offer_with_its_latest_answer(agent):
    customer = CustomerFactory()
    decision = stored_decision(customer=customer, agent=agent)
    for kind in ("presented", "thinking", "accepted"):
        DecisionAction.objects.create(decision=decision, kind=kind, offer_code="loyal-10", channel="phone", agent=agent)
    DecisionAction.objects.create(decision=decision, kind="presented", offer_code="speed-up", channel="phone")
    DecisionAction.objects.create(decision=decision, kind="no_action", channel="phone")

    offers = {offer.offer_code: offer for offer in recent_offers(customer=customer, days=14)}

    assert set(offers) == {"loyal-10", "speed-up"}
    assert (offers["loyal-10"].answer, offers["speed-up"].answer) == ("accepted", "")
    assert offers["loyal-10"].title["en"] == "Loyalty discount 10%"
    assert offers["loyal-10"].made_by == "agent"


@pytest.mark.django_db
def test_recent_offers_leave_out_the_decision_on_screen_and_other_customers(agent):
    customer = CustomerFactory()
    shown = stored_decision(customer=customer, agent=agent)
    other = stored_decision(customer=CustomerFactory(), agent=agent)
    for decision in (shown, other):
        DecisionAction.objects.create(decision=decision, kind="presented", offer_code="loyal-10", channel="phone")

    assert recent_offers(customer=customer, days=14, exclude_decision_id=shown.pk) == []


@pytest.mark.django_db
def test_budget_counts_accepted_offers_of_team_members_this_month_only(agent, other_team):
    team = agent.agent_profile.team
    stranger = AgentProfileFactory(user=UserFactory(username="stranger"), team=other_team).user
    customer = CustomerFactory()
    ours, theirs = stored_decision(customer=customer, agent=agent), stored_decision(customer=customer, agent=stranger)
    accepted = {"kind": "accepted", "offer_code": "loyal-10", "channel": "phone", "cost_cents": 1_000}
    DecisionAction.objects.create(decision=ours, **accepted)
    DecisionAction.objects.create(decision=ours, **{**accepted, "kind": "declined", "offer_code": "speed-up"})
    DecisionAction.objects.create(decision=theirs, **accepted)
    last_month = DecisionAction.objects.create(decision=ours, **accepted)
    DecisionAction.objects.filter(pk=last_month.pk).update(created_at=month_start(timezone.now()) - dt.timedelta(1))

    assert team_budget_status(team=team).spent_cents == 1_000


@pytest.mark.django_db
def test_an_acceptance_corrected_by_a_later_decline_of_the_same_offer_no_longer_spends_the_budget(agent):
    decision = stored_decision(customer=CustomerFactory(), agent=agent)
    accepted = {"offer_code": "loyal-10", "channel": "phone", "cost_cents": 1_000}
    DecisionAction.objects.create(decision=decision, kind="accepted", **accepted)
    DecisionAction.objects.create(decision=decision, kind="declined", **{**accepted, "cost_cents": 0})
    corrected = team_budget_status(team=agent.agent_profile.team).spent_cents
    DecisionAction.objects.create(decision=decision, kind="accepted", **accepted)

    assert (corrected, team_budget_status(team=agent.agent_profile.team).spent_cents) == (0, 1_000)


@pytest.mark.django_db
def test_an_offer_accepted_on_advice_asked_without_an_agent_spends_the_accepting_agents_team_budget(agent):
    decision = stored_decision(customer=CustomerFactory())
    DecisionAction.objects.create(
        decision=decision, kind="accepted", offer_code="loyal-10", channel="api", cost_cents=1_000, agent=agent
    )

    assert team_budget_status(team=agent.agent_profile.team).spent_cents == 1_000


@pytest.mark.django_db
def test_spending_stays_with_the_team_the_advice_was_made_for_when_an_agent_moves(agent, other_team):
    team = agent.agent_profile.team
    decision = stored_decision(customer=CustomerFactory(), agent=agent)
    DecisionAction.objects.create(
        decision=decision, kind="accepted", offer_code="loyal-10", channel="phone", cost_cents=1_000
    )

    agent.agent_profile.team = other_team
    agent.agent_profile.save()

    assert (team_budget_status(team=team).spent_cents, team_budget_status(team=other_team).spent_cents) == (1_000, 0)


@pytest.mark.parametrize(
    ("budget", "spent", "level", "percent"),
    [(10_000, 7_499, "green", 74), (10_000, 7_500, "amber", 75), (10_000, 9_999, "amber", 99),
     (10_000, 10_000, "red", 100), (10_000, 11_000, "red", 110), (0, 0, "red", None), (1_500_000, 28_620, "green", 2),
     (10_000, 1, "green", 1), (10_000, 0, "green", 0)],
)  # fmt: skip
def test_budget_level_is_green_below_75_amber_below_100_and_red_from_100(budget, spent, level, percent):
    status = BudgetStatus(team_name="T", budget_cents=budget, spent_cents=spent)

    assert (status.level, status.percent_used) == (level, percent)


def test_the_budget_month_starts_at_local_midnight_on_the_first():
    moment = dt.datetime(2026, 3, 31, 23, 30, tzinfo=dt.UTC)  # already 1 April in Amsterdam

    assert month_start(moment) == dt.datetime(2026, 4, 1, tzinfo=AMSTERDAM)


@pytest.mark.django_db
def test_a_team_without_spending_has_spent_nothing():
    assert team_budget_status(team=TeamFactory()).spent_cents == 0


@pytest.mark.django_db
def test_customers_with_an_active_contract_ending_soon_are_listed_once():
    today = timezone.localdate()
    soon = CustomerFactory(external_id="SOON")
    for days in (10, 40):
        ContractFactory(customer=soon, end_date=today + dt.timedelta(days=days))
    ContractFactory(customer=CustomerFactory(external_id="LATER"), end_date=today + dt.timedelta(days=91))
    ContractFactory(customer=CustomerFactory(external_id="ENDED"), end_date=today - dt.timedelta(days=1))
    ContractFactory(customer=CustomerFactory(external_id="CLOSED"), end_date=today + dt.timedelta(days=5),
                    status="ended")  # fmt: skip
    ContractFactory(customer=CustomerFactory(external_id="EDGE"), end_date=today + dt.timedelta(days=90))

    assert customers_with_contract_ending(within_days=90, today=today) == ["EDGE", "SOON"]


@pytest.mark.django_db
def test_a_customer_the_records_have_as_gone_was_one_until_they_left():
    today = timezone.localdate()
    customer = CustomerFactory(signup_date=today - dt.timedelta(days=800))
    RenewalResultFactory(customer=customer, result="churned", date=today - dt.timedelta(days=400))

    card = customer_card(customer=customer)

    assert card.tenure_months == 13


@pytest.mark.django_db
def test_a_customer_without_an_active_contract_shows_the_last_one_the_offers_are_priced_on():
    today = timezone.localdate()
    customer = CustomerFactory()
    ContractFactory(customer=customer, status="ended", monthly_fee_cents=6_000, start_date=today - dt.timedelta(
        days=800), end_date=today - dt.timedelta(days=70))  # fmt: skip
    ContractFactory(customer=customer, status="ended", monthly_fee_cents=7_700, start_date=today - dt.timedelta(
        days=400), end_date=today - dt.timedelta(days=5))  # fmt: skip
    ContractFactory(customer=customer, status="cancelled", start_date=today + dt.timedelta(days=10))  # not started

    card = customer_card(customer=customer)

    assert card.contract_ended and card.pays_monthly_cents == 7_700
    assert card.contract.end_date == today - dt.timedelta(days=5)


@pytest.mark.django_db
def test_an_active_contract_comes_before_a_later_ended_one():
    today = timezone.localdate()
    customer = CustomerFactory()
    ContractFactory(customer=customer, monthly_fee_cents=5_000, start_date=today - dt.timedelta(days=300))
    ContractFactory(customer=customer, status="ended", monthly_fee_cents=9_000, start_date=today - dt.timedelta(
        days=100), end_date=today - dt.timedelta(days=5))  # fmt: skip

    card = customer_card(customer=customer)

    assert not card.contract_ended and card.pays_monthly_cents == 5_000
