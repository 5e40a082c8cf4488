"""Reads for the fairness report and the review KPIs: what happened to each decision, joined with who it was for.

What happened to a decision is read from its append-only actions, with the same rules as the
outcome log (retention.selectors.outcome_log):
- an offer was made when it was presented, accepted, declined or thought over;
- the accepted offer is the latest acceptance not corrected by a later decline of the same offer;
- the offer a decision "gave" (its treatment) is the accepted offer, else the offer last put to the customer.

Protected attributes are read only here, for the fairness report; they never reach a model.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from django.db.models import QuerySet

from ml.policy import NO_OFFER
from retention.models import (
    FINAL_ANSWER_KINDS,
    OFFER_ACTION_KINDS,
    SHOWN_KINDS,
    Customer,
    Decision,
    DecisionAction,
    ProtectedAttributes,
)
from retention.selectors.decisions import decisions_of_teams, stored_json_of
from retention.selectors.outcome_log import logged_outcomes

ACTION_FIELDS = ("decision_id", "kind", "offer_code", "override_reason", "cost_cents", "agent_id", "decision__agent_id")
SEGMENT_ATTRIBUTES = ("segment", "value_tier")


class Outcome:
    """Where a decision ended, as far as the agent's log tells."""

    ACCEPTED = "accepted"
    DECLINED = "declined"
    OPEN = "open"  # an offer was made and is not answered yet (or "thinking it over")
    NO_OFFER = "no_offer"
    ALL = (ACCEPTED, DECLINED, OPEN, NO_OFFER)


@dataclass(frozen=True)
class ActionFact:
    kind: str
    offer_code: str
    override_reason: str
    cost_cents: int
    # Logged by someone other than the agent the advice was made for: their team lead or an administrator.
    by_another: bool = False


def logged_by_another(action_agent_id: int | None, decision_agent_id: int | None) -> bool:
    """An action a named person logged on advice made for someone else; a CRM's log without a name is the
    advised agent's own."""
    return action_agent_id is not None and decision_agent_id is not None and action_agent_id != decision_agent_id


def credited_agent_id(advised_agent_id: int | None, logged_by: Iterable[int | None]) -> int | None:
    """Whom a decision counts for per agent: the agent the advice was made for. Advice a CRM asked for without an
    agent counts for the first person who logged on it (`logged_by`, oldest first): who first put an offer to the
    customer, or asked their team lead about one; None while no person did."""
    if advised_agent_id is not None:
        return advised_agent_id
    return next((agent_id for agent_id in logged_by if agent_id is not None), None)


@dataclass(frozen=True)
class ActionSummary:
    """What the actions of one decision add up to."""

    made_codes: tuple[str, ...] = ()
    accepted_code: str = NO_OFFER
    accepted_cost_cents: int = 0
    declined_codes: tuple[str, ...] = ()
    last_shown_code: str = NO_OFFER
    escalated: bool = False
    override_reasons: tuple[str, ...] = field(default=())
    # An offer made, and an override logged, by the agent the advice was made for, not by a team lead acting on it.
    offer_made_by_agent: bool = False
    overridden_by_agent: bool = False
    # An offer made by a team lead (or an administrator) on the advised agent's behalf, and whether the offer
    # that stands accepted was first made by the agent themselves.
    offer_made_by_another: bool = False
    accepted_made_by_agent: bool = False
    # Whom "the agent" above is (see `credited_agent_id`); None for a summary built without who logged what.
    credited_agent_id: int | None = None

    @property
    def offer_made(self) -> bool:
        return bool(self.made_codes)

    @property
    def overridden(self) -> bool:
        return bool(self.override_reasons)

    @property
    def treatment_code(self) -> str:
        return self.accepted_code or self.last_shown_code

    @property
    def outcome(self) -> str:
        if self.accepted_code:
            return Outcome.ACCEPTED
        if self.declined_codes:
            return Outcome.DECLINED
        return Outcome.OPEN if self.offer_made else Outcome.NO_OFFER


def action_summary(actions: Iterable[ActionFact]) -> ActionSummary:
    """The summary of one decision's actions, given oldest first."""
    made, reasons = [], []
    # Per offer its latest final answer, re-inserted on every answer so the dict runs oldest to newest.
    latest_final: dict[str, ActionFact] = {}
    last_shown, escalated, overridden_by_agent = NO_OFFER, False, False
    first_made_by_another: dict[str, bool] = {}  # per offer: whether whoever first made it was not the agent
    for action in actions:
        escalated = escalated or action.kind == DecisionAction.Kind.ESCALATED
        overridden_by_agent = overridden_by_agent or bool(action.override_reason and not action.by_another)
        if action.override_reason and action.override_reason not in reasons:
            reasons.append(action.override_reason)
        if action.kind == DecisionAction.Kind.UNDONE:  # the acceptance was logged by mistake: no answer stands
            latest_final.pop(action.offer_code, None)
            continue
        if not action.offer_code or action.kind not in OFFER_ACTION_KINDS:
            continue
        _append_new(made, action.offer_code)
        # Who made an offer is who first put it to the customer: an answer logged later is not a new offer.
        first_made_by_another.setdefault(action.offer_code, action.by_another)
        if action.kind in SHOWN_KINDS:
            last_shown = action.offer_code
        if action.kind in FINAL_ANSWER_KINDS:
            latest_final.pop(action.offer_code, None)
            latest_final[action.offer_code] = action
    accepted = _latest_standing_acceptance(latest_final)
    # A decline stands until an acceptance corrects it (undoing that acceptance brings back no decline).
    declined = [
        code for code in made if code in latest_final and latest_final[code].kind == DecisionAction.Kind.DECLINED
    ]
    return ActionSummary(
        made_codes=tuple(made),
        accepted_code=accepted.offer_code if accepted else NO_OFFER,
        accepted_cost_cents=accepted.cost_cents if accepted else 0,
        declined_codes=tuple(declined),
        last_shown_code=last_shown,
        escalated=escalated,
        override_reasons=tuple(reasons),
        offer_made_by_agent=any(not by_another for by_another in first_made_by_another.values()),
        overridden_by_agent=overridden_by_agent,
        offer_made_by_another=any(first_made_by_another.values()),
        accepted_made_by_agent=accepted is not None and not first_made_by_another[accepted.offer_code],
    )


def _append_new(values: list[str], value: str) -> None:
    if value not in values:
        values.append(value)


def _latest_standing_acceptance(latest_final: dict[str, ActionFact]) -> ActionFact | None:
    """The latest acceptance that no later decline of the same offer, nor an undo, corrected."""
    standing = [action for action in latest_final.values() if action.kind == DecisionAction.Kind.ACCEPTED]
    return standing[-1] if standing else None


@dataclass(frozen=True)
class LoggedAction:
    """An action as stored, with who logged it (None: a CRM without a name)."""

    kind: str
    offer_code: str
    override_reason: str
    cost_cents: int
    agent_id: int | None


def decision_summary(advised_agent_id: int | None, actions: Sequence[LoggedAction]) -> ActionSummary:
    """The summary of one decision's actions (oldest first), with what its credited agent did themselves."""
    credited = credited_agent_id(advised_agent_id, (action.agent_id for action in actions))
    facts = (
        ActionFact(a.kind, a.offer_code, a.override_reason, a.cost_cents, logged_by_another(a.agent_id, credited))
        for a in actions
    )
    return replace(action_summary(facts), credited_agent_id=credited)


def action_summaries(decision_ids: Sequence) -> dict:
    """Summaries of these decisions' actions by decision id; one query (decisions without actions are left out)."""
    logged: dict = defaultdict(list)
    advised: dict = {}
    actions = (
        DecisionAction.objects.filter(decision_id__in=decision_ids)
        .order_by("created_at", "id")
        .values_list(*ACTION_FIELDS)
    )
    for decision_id, kind, offer_code, override_reason, cost_cents, agent_id, advised_id in actions:
        logged[decision_id].append(LoggedAction(kind, offer_code, override_reason, cost_cents, agent_id))
        advised[decision_id] = advised_id
    return {decision_id: decision_summary(advised[decision_id], rows) for decision_id, rows in logged.items()}


# --- one row per decision -----------------------------------------------------------------------

DECISION_COLUMNS = ("id", "customer_id", "team_id", "agent_id", "risk_band", "recommended_offer_code")
FRAME_COLUMNS = (
    "decision_id",
    "customer_id",
    "team_id",
    "agent_id",
    "credited_agent_id",  # whom the decision counts for per agent (see credited_agent_id)
    "risk_band",
    "recommended_code",
    "offer_made",
    "treatment_code",
    "offered_cost_cents",
    "accepted",
    "accepted_cost_cents",
    "outcome",
    "escalated",
    "offer_made_by_agent",
    "overridden_by_agent",
    "offer_made_by_another",
    "accepted_made_by_agent",
)


def decision_frame(decisions: QuerySet[Decision]) -> pd.DataFrame:
    """One row per decision (columns FRAME_COLUMNS); two queries, and one per IDS_PER_QUERY decisions that made an
    offer, for the ranked offers it was priced in.

    offered_cost_cents is the cost of the offer the decision gave, as priced for the customer, and NaN
    without one; accepted_cost_cents is NaN unless an offer was accepted.
    """
    rows = list(decisions.order_by().values_list(*DECISION_COLUMNS))
    summaries = action_summaries(decisions.order_by().values("id"))
    offered = dict(stored_json_of((pk for pk, summary in summaries.items() if summary.treatment_code), ("offers",)))
    records = [_frame_record(row, summaries.get(row[0], ActionSummary()), offered.get(row[0])) for row in rows]
    frame = pd.DataFrame.from_records(records, columns=list(FRAME_COLUMNS))
    return frame.astype({"offered_cost_cents": float, "accepted_cost_cents": float})


def _frame_record(row: tuple, summary: ActionSummary, offers: list[dict] | None) -> tuple:
    decision_id, customer_id, team_id, agent_id, risk_band, recommended_code = row
    return (
        str(decision_id),
        customer_id,
        team_id,
        agent_id,
        summary.credited_agent_id if summary.credited_agent_id is not None else agent_id,
        risk_band,
        recommended_code,
        summary.offer_made,
        summary.treatment_code,
        _offer_cost(offers, summary.treatment_code),
        bool(summary.accepted_code),
        summary.accepted_cost_cents if summary.accepted_code else np.nan,
        summary.outcome,
        summary.escalated,
        summary.offer_made_by_agent,
        summary.overridden_by_agent,
        summary.offer_made_by_another,
        summary.accepted_made_by_agent,
    )


def _offer_cost(offers: list[dict] | None, code: str) -> float:
    if not code:
        return np.nan
    cost = next((offer.get("cost_cents") for offer in offers or [] if offer.get("code") == code), None)
    return float(cost) if cost is not None else np.nan


# --- the fairness log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FairnessLog:
    """The decisions of a period with what happened, the renewal result where known, and the groups to compare."""

    frame: pd.DataFrame
    protected_attributes: tuple[str, ...]
    segment_attributes: tuple[str, ...] = SEGMENT_ATTRIBUTES

    @property
    def attributes(self) -> tuple[str, ...]:
        return (*self.protected_attributes, *self.segment_attributes)


def fairness_log(
    *, since: dt.datetime | None, until: dt.datetime | None, team_ids: Iterable[int] | None = None
) -> FairnessLog:
    """Decisions with `as_of` in [since, until), of these teams as `decisions_of_teams` selects them (None: every
    team, and decisions without one).

    Columns: those of decision_frame; offer_made as 0/1; stayed as 1/0 where a renewal result labels the
    decision (see retention.selectors.outcome_log) and NaN elsewhere; segment, value_tier, and one column
    per protected attribute (None where not recorded). `since` and `until` must be time-zone aware.
    """
    decisions = _decisions_between(since, until, team_ids)
    frame = decision_frame(decisions)
    frame["offer_made"] = frame["offer_made"].astype(int)
    frame["stayed"] = _stayed(frame, decisions, since, until)
    segments = _segments(decisions)
    protected, names = _protected(decisions)
    frame = frame.merge(segments, on="customer_id", how="left").merge(protected, on="customer_id", how="left")
    return FairnessLog(frame=frame, protected_attributes=names)


def _decisions_between(
    since: dt.datetime | None, until: dt.datetime | None, team_ids: Iterable[int] | None
) -> QuerySet[Decision]:
    # The team filter of the offer log and the KPIs, so that the three count the same decisions of a team.
    decisions = decisions_of_teams(team_ids)
    if since is not None:
        decisions = decisions.filter(as_of__gte=since)
    if until is not None:
        decisions = decisions.filter(as_of__lt=until)
    return decisions


def _stayed(
    frame: pd.DataFrame, decisions: QuerySet[Decision], since: dt.datetime | None, until: dt.datetime | None
) -> pd.Series:
    outcomes = logged_outcomes(since=since, until=until, among=decisions, with_features=False)
    stayed = dict(zip(outcomes["decision_id"], outcomes["stayed"].astype(float), strict=True))
    return frame["decision_id"].map(stayed).astype(float)


def _segments(decisions: QuerySet[Decision]) -> pd.DataFrame:
    customers = Customer.objects.filter(pk__in=decisions.values("customer_id"))
    columns = ["id", *SEGMENT_ATTRIBUTES]
    frame = pd.DataFrame.from_records(list(customers.values_list(*columns)), columns=columns)
    # A blank value tier is not recorded, not a group of its own.
    return frame.rename(columns={"id": "customer_id"}).replace({"value_tier": {"": None}})


def _protected(decisions: QuerySet[Decision]) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """One column per protected attribute name; a name that clashes with a log column gets a prefix."""
    stored = ProtectedAttributes.objects.filter(customer_id__in=decisions.values("customer_id"))
    values = dict(stored.values_list("customer_id", "values"))
    names = sorted({str(name) for attributes in values.values() for name in attributes})
    column = {name: _column_name(name) for name in names}
    records = [
        {"customer_id": customer_id, **{column[str(name)]: _group(value) for name, value in attributes.items()}}
        for customer_id, attributes in values.items()
    ]
    frame = pd.DataFrame.from_records(records, columns=["customer_id", *column.values()])
    return frame, tuple(column.values())


def _column_name(name: str) -> str:
    taken = {*FRAME_COLUMNS, "stayed", *SEGMENT_ATTRIBUTES}
    return f"protected_{name}" if name in taken else name


def _group(value) -> str | None:
    """Groups are compared as text: 0 and "0" from different CRM exports are one group."""
    if value is None or value == "":
        return None
    return str(value)
