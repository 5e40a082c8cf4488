"""Calls played on the synthetic base: through the panel's services, in the agents' names, answered by the truth."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from ml.models import CustomerTruth, ModelVersion
from ml.registry import champions
from ml.simulate import SOON_DAYS
from retention.models import Customer, Decision, DecisionAction
from retention.services import simulation
from retention.services.simulation import base_generate, calls_play
from tests.builders import session_champion

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(trained_churn_artifact):
    """The demo catalog and users, 150 synthetic customers with their truth, and a churn model serving."""
    call_command("seed_demo", stdout=io.StringIO())
    base_generate(n=150, seed=3)
    champions.clear()
    session_champion(trained_churn_artifact)
    yield
    champions.clear()


def demo_agents() -> list:
    return list(get_user_model().objects.filter(username__in=["agent", "agent2"]).order_by("username"))


def actions_of(decision: Decision) -> list[tuple[str, str, str]]:
    return [(a.kind, a.offer_code, a.override_reason) for a in decision.actions.order_by("created_at", "pk")]


def test_each_call_asks_for_advice_on_a_customer_ending_soon_and_logs_what_came_of_it(demo):
    summary = calls_play(calls=8, seed=0, agents=demo_agents())

    decisions = list(Decision.objects.select_related("customer", "agent"))
    today = timezone.localdate()
    assert summary.calls == len(decisions) == 8
    assert len({decision.customer_id for decision in decisions}) == 8
    assert {decision.agent.username for decision in decisions} == {"agent", "agent2"}
    for decision in decisions:
        ends = [c.end_date for c in decision.customer.contracts.filter(status="active")]
        assert any(today < end <= today + dt.timedelta(days=SOON_DAYS) for end in ends)
        logged = actions_of(decision)
        if logged == [("no_action", "", "")]:
            continue
        (presented, code, reason), (answer, answered_code, _) = logged
        assert presented == "presented" and answered_code == code and answer in ("accepted", "declined")
        assert code == decision.recommended_offer_code or reason == "customer_request"
    assert summary.accepted + summary.declined == summary.presented
    assert summary.accepted == DecisionAction.objects.filter(kind="accepted").count()


def test_the_same_seed_calls_the_same_customers_who_answer_the_same(demo):
    with transaction.atomic():
        calls_play(calls=6, seed=4, agents=demo_agents())
        first = logged_calls()
        transaction.set_rollback(True)
    calls_play(calls=6, seed=4, agents=demo_agents())

    assert logged_calls() == first


def test_nobody_is_called_twice(demo):
    calls_play(calls=5, seed=4, agents=demo_agents())
    calls_play(calls=5, seed=4, agents=demo_agents())

    assert Decision.objects.count() == 10
    assert Decision.objects.values("customer").distinct().count() == 10


def logged_calls() -> list:
    decisions = Decision.objects.select_related("customer", "agent").order_by("customer__external_id")
    return [(d.customer.external_id, d.agent.username, actions_of(d)) for d in decisions]


@pytest.mark.parametrize(("leave", "answer"), [(0.0, "accepted"), (1.0, "declined")])
def test_customers_answer_as_their_truth_says(demo, monkeypatch, leave, answer):
    monkeypatch.setattr(simulation, "GIVES_IN", 1.0)  # every insistent customer gets the dearest offer
    CustomerTruth.objects.update(pushiness=1.0, leave_probability=leave, offer_effects={
        "discount": 0.0, "gift": 0.0, "upgrade": 0.0, "service_recovery": 0.0,
    })  # fmt: skip

    summary = calls_play(calls=8, seed=0, agents=demo_agents())

    answers = set(DecisionAction.objects.exclude(kind="presented").values_list("kind", flat=True))
    assert summary.presented > 0
    assert answers <= {answer, "no_action"} and answer in answers


def test_calls_need_agents_and_customers_to_call(demo):
    with pytest.raises(ValidationError, match="at least one agent"):
        calls_play(calls=3, seed=0, agents=[])
    with pytest.raises(ValidationError, match="at least 1"):
        calls_play(calls=0, seed=0, agents=demo_agents())
    CustomerTruth.objects.all().delete()
    with pytest.raises(ValidationError, match="generate_customers"):
        calls_play(calls=3, seed=0, agents=demo_agents())
    assert not Decision.objects.exists()


def test_the_command_names_the_agents_it_cannot_find(demo):
    with pytest.raises(CommandError, match="'nobody'"):
        call_command("play_calls", calls=2, agent=["agent", "nobody"], stdout=io.StringIO())
    out = io.StringIO()
    call_command("play_calls", calls=3, agents=["agent2"], stdout=out)

    assert out.getvalue().startswith("Played 3 calls in ")
    assert set(Decision.objects.values_list("agent__username", flat=True)) == {"agent2"}


def test_the_command_refuses_an_administrator_and_says_when_it_ran_out_of_customers(demo):
    from tests.factories import AgentProfileFactory, UserFactory

    AgentProfileFactory(user=UserFactory(username="boss"), role="admin", authority_level=3, team=None)
    AgentProfileFactory(user=UserFactory(username="root", is_superuser=True), role="agent", team=None)
    with pytest.raises(CommandError, match="'boss': administrators do not take calls"):
        call_command("play_calls", calls=2, agents=["agent", "boss"], stdout=io.StringIO())
    with pytest.raises(CommandError, match="'root': administrators do not take calls"):
        call_command("play_calls", calls=2, agents=["root"], stdout=io.StringIO())
    out = io.StringIO()

    call_command("play_calls", calls=10_000, stdout=out)

    played = Decision.objects.count()
    assert 0 < played < 10_000
    assert f"Only {played} of the 10000 calls asked for: no more customers whose contract ends within {SOON_DAYS}" in (
        out.getvalue()
    )


def test_without_a_churn_model_the_command_says_to_train_one_and_logs_nothing(demo):
    champions.clear()
    ModelVersion.objects.all().delete()

    with pytest.raises(CommandError, match=r"no churn model has been trained.*train_models"):
        call_command("play_calls", calls=2, stdout=io.StringIO())
    assert not Decision.objects.exists()


def test_prepare_demo_plays_calls_only_while_the_log_is_empty_and_shows_a_customer_not_yet_called(demo):
    out = io.StringIO()
    call_command("prepare_demo", calls=4, stdout=out)
    call_command("prepare_demo", calls=4, stdout=io.StringIO())

    assert Decision.objects.count() == 4
    example = out.getvalue().split("?customer=")[1].split()[0]
    assert not Decision.objects.filter(customer=Customer.objects.get(external_id=example)).exists()


def test_prepare_demo_interrupted_in_its_calls_leaves_none_and_plays_them_all_next_time(demo, monkeypatch):
    from retention.services import simulation

    original, made = simulation.decision_create, []

    def interrupted_on_the_third_call(**kwargs):
        if len(made) == 2:
            raise KeyboardInterrupt
        made.append(1)
        return original(**kwargs)

    monkeypatch.setattr(simulation, "decision_create", interrupted_on_the_third_call)
    with pytest.raises(CommandError, match=r"^interrupted: each step stores all of its data or none"):
        call_command("prepare_demo", calls=4, stdout=io.StringIO())
    assert len(made) == 2 and not Decision.objects.exists()

    monkeypatch.setattr(simulation, "decision_create", original)
    call_command("prepare_demo", calls=4, stdout=io.StringIO())
    assert Decision.objects.count() == 4


def test_a_customer_who_objected_to_profiling_is_not_called(demo):
    callable_ids = {truth.customer_id for truth in simulation._callers(1_000, np.random.default_rng(0))}
    Customer.objects.filter(pk__in=callable_ids).update(objects_to_profiling=True)
    spared = Customer.objects.filter(pk__in=list(callable_ids)[:3])
    spared.update(objects_to_profiling=False)

    summary = calls_play(calls=1_000, seed=0, agents=demo_agents())

    assert summary.calls == 3
    assert not Decision.objects.filter(customer__objects_to_profiling=True).exists()
