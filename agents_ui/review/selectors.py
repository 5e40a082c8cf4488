"""Reads for the team-lead review pages: the filtered offer log and the KPIs of a period.

What happened to a decision follows retention.selectors.fairness (the same rules as the outcome log);
the offer log's outcome filter is the same rule written as SQL, so filtering and showing agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Subquery

from retention.models import (
    CORRECTING_KINDS,
    MADE_KINDS,
    OFFER_ACTION_KINDS,
    AgentProfile,
    Decision,
    DecisionAction,
)
from retention.selectors.budget import accepted_offers, charged_team_name, logged_later_on_the_same_offer
from retention.selectors.decisions import decisions_of_teams
from retention.selectors.fairness import (
    ActionSummary,
    LoggedAction,
    Outcome,
    decision_frame,
    decision_summary,
)
from retention.selectors.outcome_log import logged_outcomes
from retention.selectors.panel import actor_name
from retention.services.decisions import decides_escalation, no_action_answers_escalation

# The log never shows feature values or reasons; leaving them out keeps a page of rows light.
LOG_DEFERRED_FIELDS = ("features", "reasons", "best_tariff", "model_versions")
# The outcome filter also offers "escalated", which is not an outcome but something done on the way.
ESCALATED = "escalated"


# --- the offer log ------------------------------------------------------------------------------


def offer_log_decisions(
    *,
    team_ids: Iterable[int] | None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    agent_id: int | None = None,
    offer_code: str = "",
    outcome: str = "",
    risk_band: str = "",
    overrides_only: bool = False,
    explored_only: bool = False,
) -> QuerySet[Decision]:
    """The log, newest first, with customer, agent, team and actions (with who logged them) loaded, and
    `charged_team_name`, the team the accepted offer is charged to: three queries for any page size."""
    decisions = decisions_of_teams(team_ids)
    conditions = Q()
    if since is not None:
        conditions &= Q(as_of__gte=since)
    if until is not None:
        conditions &= Q(as_of__lt=until)
    if agent_id is not None:
        conditions &= credited_to(agent_id)
    if risk_band:
        # A customer who objected to profiling is shown with no band, so no band's filter may list them either.
        conditions &= Q(risk_band=risk_band) & Q(customer__objects_to_profiling=False)
    if explored_only:
        conditions &= Q(explored=True)
    if overrides_only:
        conditions &= Exists(_actions().exclude(override_reason=""))
    if offer_code:
        conditions &= Q(recommended_offer_code=offer_code) | Exists(_actions().filter(offer_code=offer_code))
    if outcome:
        conditions &= outcome_condition(outcome)
    return (
        decisions.filter(conditions)
        .select_related("customer", "agent", "team")
        .defer(*LOG_DEFERRED_FIELDS)
        .annotate(charged_team_name=charged_team_name())
        .prefetch_related(Prefetch("actions", queryset=_actions_with_who_logged_them()))
        .order_by("-as_of", "-created_at", "id")
    )


def credited_to(agent_id: int) -> Q:
    """Decisions that count for this agent (retention.selectors.fairness.credited_agent_id, written as SQL): made
    for them, or asked for without an agent and first logged on by them."""
    first_logged_by = _actions().filter(agent__isnull=False).order_by("created_at", "id").values("agent_id")[:1]
    first_logged_on_by_them = (
        Decision.objects.filter(agent__isnull=True).annotate(first=Subquery(first_logged_by)).filter(first=agent_id)
    )
    return Q(agent_id=agent_id) | Q(pk__in=first_logged_on_by_them.values("pk"))


def _actions_with_who_logged_them() -> QuerySet[DecisionAction]:
    return DecisionAction.objects.select_related("agent").order_by("created_at", "id")


def _actions() -> QuerySet[DecisionAction]:
    return DecisionAction.objects.filter(decision_id=OuterRef("pk"))


def outcome_condition(outcome: str) -> Q:
    """Decisions whose actions add up to `outcome` (see retention.selectors.fairness.ActionSummary.outcome)."""
    offer_made = Exists(_actions().filter(kind__in=OFFER_ACTION_KINDS).exclude(offer_code=""))
    accepted = Exists(_standing_acceptances())
    declined = Exists(_standing_declines())
    conditions = {
        Outcome.ACCEPTED: Q(accepted),
        Outcome.DECLINED: ~Q(accepted) & Q(declined),
        # Made, and neither accepted (an acceptance undone is none) nor declined.
        Outcome.OPEN: Q(offer_made) & ~Q(accepted) & ~Q(declined),
        Outcome.NO_OFFER: ~Q(offer_made),
        ESCALATED: Q(Exists(_actions().filter(kind=DecisionAction.Kind.ESCALATED))),
    }
    if outcome not in conditions:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {', '.join(conditions)}")
    return conditions[outcome]


def _standing_declines() -> QuerySet[DecisionAction]:
    """Declines of the outer decision that no later acceptance of the same offer corrected."""
    later_acceptance = logged_later_on_the_same_offer([DecisionAction.Kind.ACCEPTED])
    return _actions().filter(kind=DecisionAction.Kind.DECLINED).exclude(Exists(later_acceptance))


def _standing_acceptances() -> QuerySet[DecisionAction]:
    """Acceptances of the outer decision that no later decline of the same offer, nor an undo, corrected."""
    later_correction = logged_later_on_the_same_offer(CORRECTING_KINDS)
    return _actions().filter(kind=DecisionAction.Kind.ACCEPTED).exclude(Exists(later_correction))


def prefetched_summary(decision: Decision) -> ActionSummary:
    """The summary of a decision from its prefetched actions (no query)."""
    return decision_summary(
        decision.agent_id,
        [
            LoggedAction(action.kind, action.offer_code, action.override_reason, action.cost_cents, action.agent_id)
            for action in decision.actions.all()
        ],
    )


# --- KPIs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpis:
    decisions: int
    offers_made: int
    accepted: int
    accepted_cost_cents: int
    labelled: int  # decisions a renewal result labels (see retention.selectors.outcome_log)
    stayed: int
    net_retained_cents: int

    @property
    def offer_share(self) -> float | None:
        return _share(self.offers_made, self.decisions)

    @property
    def acceptance_rate(self) -> float | None:
        return _share(self.accepted, self.offers_made)

    @property
    def save_rate(self) -> float | None:
        return _share(self.stayed, self.labelled)


@dataclass(frozen=True)
class AgentKpis:
    agent_id: int | None
    name: str
    decisions: int
    offers_made: int
    overrides: int
    escalations: int
    accepted: int
    accepted_cost_cents: int
    made_by_lead: int = 0  # decisions on which a team lead (or an administrator) made an offer on their advice

    @property
    def override_rate(self) -> float | None:
        return _share(self.overrides, self.offers_made)

    @property
    def average_cost_cents(self) -> int | None:
        """Mean cost of an accepted offer."""
        return round(self.accepted_cost_cents / self.accepted) if self.accepted else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def period_kpis(
    *, team_ids: Iterable[int] | None, since: dt.datetime | None, until: dt.datetime | None
) -> tuple[Kpis, list[AgentKpis]]:
    """The KPIs of the decisions with `as_of` in [since, until), overall and per agent."""
    decisions = decisions_of_teams(team_ids)
    if since is not None:
        decisions = decisions.filter(as_of__gte=since)
    if until is not None:
        decisions = decisions.filter(as_of__lt=until)
    frame = decision_frame(decisions)
    labelled = logged_outcomes(since=since, until=until, among=decisions, with_features=False)
    return _kpis(frame, labelled), _agent_kpis(frame)


def _kpis(frame: pd.DataFrame, labelled: pd.DataFrame) -> Kpis:
    return Kpis(
        decisions=len(frame),
        offers_made=int(frame["offer_made"].sum()),
        accepted=int(frame["accepted"].sum()),
        accepted_cost_cents=int(frame["accepted_cost_cents"].fillna(0).sum()),
        labelled=len(labelled),
        stayed=int(labelled["stayed"].astype(bool).sum()),
        net_retained_cents=int(labelled["reward_cents"].sum()),
    )


def _agent_kpis(frame: pd.DataFrame) -> list[AgentKpis]:
    if frame.empty:
        return []
    # An agent's figures count what they did themselves; what their team lead made on their advice is counted
    # beside it (made_by_lead), so it is in a row and no agent's rates carry their lead's choices. Advice asked
    # without an agent is the credited agent's: who first logged on it (retention.selectors.fairness).
    own_acceptance = frame["accepted"] & frame["accepted_made_by_agent"]
    frame = frame.assign(
        agent_key=frame["credited_agent_id"].astype("Int64").fillna(-1).astype(int),
        override_made=frame["overridden_by_agent"] & frame["offer_made_by_agent"],
        own_accepted=own_acceptance,
        own_cost=frame["accepted_cost_cents"].fillna(0).where(own_acceptance, 0),
    )
    totals = frame.groupby("agent_key").agg(
        decisions=("decision_id", "size"),
        offers_made=("offer_made_by_agent", "sum"),
        overrides=("override_made", "sum"),
        escalations=("escalated", "sum"),
        accepted=("own_accepted", "sum"),
        accepted_cost_cents=("own_cost", "sum"),
        made_by_lead=("offer_made_by_another", "sum"),
    )
    names = _agent_names([key for key in totals.index if key >= 0])
    rows = [_agent_row(key, names.get(key, ""), totals.loc[key]) for key in totals.index]
    return sorted(rows, key=lambda row: (row.agent_id is None, row.name.lower()))


def _agent_row(key: int, name: str, totals: pd.Series) -> AgentKpis:
    return AgentKpis(
        agent_id=key if key >= 0 else None,
        name=name,
        **{column: int(totals[column]) for column in totals.index},
    )


def _agent_names(user_ids: list[int]) -> dict[int, str]:
    users = get_user_model().objects.filter(pk__in=user_ids)
    return {user.pk: user.get_full_name() or user.get_username() for user in users}


# --- escalations --------------------------------------------------------------------------------

# Escalations wait for a team lead while the customer is on the line or calls back; older ones are history.
OPEN_ESCALATION_DAYS = 7


@dataclass(frozen=True)
class OpenEscalation:
    decision: Decision
    offer_code: str
    escalated_at: dt.datetime
    escalated_by: str


def open_escalations(*, team_ids: Iterable[int] | None, now: dt.datetime) -> list[OpenEscalation]:
    """Offers an agent asked a team lead about in the last days that nobody has made, answered or turned down (by
    logging a "no action" that answers it, see `no_action_answers_escalation`) since, nor answered by another offer
    made instead or accepted (see `agents_ui.presenters.escalation_open`), and calls escalated as a whole
    that nothing was logged on since, newest first; three queries."""
    since = now - dt.timedelta(days=OPEN_ESCALATION_DAYS)
    later = DecisionAction.objects.filter(
        decision=OuterRef("decision"), created_at__gte=OuterRef("created_at")
    ).exclude(pk=OuterRef("pk"))
    # An offer asked about is answered when someone makes it, when someone other than who asked makes another
    # instead (`made_instead`), or when the customer accepts another (no second offer is made then); a "no action"
    # since may turn it down (see below).
    offer_made_since = later.filter(offer_code=OuterRef("offer_code"), kind__in=MADE_KINDS)
    made_by_a_user = later.filter(kind__in=MADE_KINDS, agent__isnull=False)
    # Spelled out for an escalation logged by a CRM (no user), which any user's offer answers.
    another_made_instead = (Q(agent__isnull=True) & Exists(made_by_a_user)) | (
        Q(agent__isnull=False) & Exists(made_by_a_user.exclude(agent=OuterRef("agent")))
    )
    # An acceptance that stands: one undone or declined since leaves the question open again.
    another_accepted_since = (
        accepted_offers()
        .filter(decision=OuterRef("decision"), created_at__gte=OuterRef("created_at"))
        .exclude(offer_code=OuterRef("offer_code"))
    )
    # Whatever the lead does on a call escalated as a whole (an offer, an answer, "no action") answers it.
    call_handled_since = later.exclude(kind=DecisionAction.Kind.ESCALATED)
    escalations = DecisionAction.objects.filter(kind=DecisionAction.Kind.ESCALATED, created_at__gte=since)
    if team_ids is not None:
        # Every team's (None) needs no filter: "decision in all decisions" made SQLite walk the whole log (1.3 s at
        # 100,000 decisions) for the review pages' count of open escalations, instead of the recent actions.
        escalations = escalations.filter(decision__in=decisions_of_teams(team_ids))
    escalations = (
        escalations
        # A customer who objected to profiling since may be made no offer from the advice: nothing waits.
        .exclude(decision__customer__objects_to_profiling=True)
        .exclude(~Q(offer_code="") & (Exists(offer_made_since) | another_made_instead | Exists(another_accepted_since)))
        .exclude(Q(offer_code="") & Exists(call_handled_since))
        .select_related("decision__customer", "decision__agent", "agent", "api_client")
        .defer(*(f"decision__{name}" for name in LOG_DEFERRED_FIELDS))
        .order_by("-created_at", "-pk")
    )
    escalations = list(escalations)
    no_actions = _no_actions_on({action.decision_id for action in escalations if action.offer_code})
    return [
        OpenEscalation(
            decision=action.decision,
            offer_code=action.offer_code,
            escalated_at=action.created_at,
            escalated_by=actor_name(action),
        )
        for action in escalations
        if not (action.offer_code and _turned_down(action, no_actions.get(action.decision_id, [])))
    ]


@dataclass(frozen=True)
class EscalationsWaiting:
    for_viewer: list[OpenEscalation]  # what this viewer decides
    for_administrator: list[OpenEscalation]  # above the viewing lead's own authority too


def escalations_waiting(
    *, team_ids: Iterable[int] | None, profile: AgentProfile | None, now: dt.datetime
) -> EscalationsWaiting:
    """The open escalations of these teams, split by who decides them: the viewer, or an administrator (an offer
    above a lead's own authority). Administrators, and a superuser without a profile, decide every one."""
    split = EscalationsWaiting(for_viewer=[], for_administrator=[])
    for escalation in open_escalations(team_ids=team_ids, now=now):
        (split.for_viewer if _decides(profile, escalation) else split.for_administrator).append(escalation)
    return split


def _decides(profile: AgentProfile | None, escalation: OpenEscalation) -> bool:
    if profile is None or profile.role == AgentProfile.Role.ADMIN or not escalation.offer_code:
        return True
    offer = escalation.decision.offer(escalation.offer_code)
    return offer is None or decides_escalation(profile.authority_level, offer)


def _no_actions_on(decision_ids: set) -> dict:
    """Each decision's "no action" rows, with who logged them."""
    by_decision: dict = {}
    rows = DecisionAction.objects.filter(decision_id__in=decision_ids, kind=DecisionAction.Kind.NO_ACTION)
    for row in rows.select_related("agent__agent_profile").order_by("created_at", "pk"):
        by_decision.setdefault(row.decision_id, []).append(row)
    return by_decision


def _turned_down(escalation: DecisionAction, no_actions: list[DecisionAction]) -> bool:
    offer = escalation.decision.offer(escalation.offer_code)
    return any(
        row.created_at >= escalation.created_at and row.pk != escalation.pk and no_action_answers_escalation(row, offer)
        for row in no_actions
    )
