"""What the review pages and the CSV export show for a decision, a budget month and the fairness report.

Pure functions of what the selectors loaded (no queries), so a page's query count does not grow with its rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import groupby

from django.utils.translation import gettext_lazy as _

from agents_ui import labels
from agents_ui.presenters import in_language
from agents_ui.review.selectors import OpenEscalation, prefetched_summary
from agents_ui.templatetags.panel_tags import euro, percent
from agents_ui.views import panel_url
from ml.fairness import Comparison, FairnessReport, GroupCell
from retention.models import Customer, Decision
from retention.selectors.budget import TeamMonthBudget
from retention.selectors.fairness import Outcome

OUTCOMES = {
    Outcome.ACCEPTED: _("Accepted"),
    Outcome.DECLINED: _("Declined"),
    Outcome.OPEN: _("Offer made, no final answer"),
    Outcome.NO_OFFER: _("No offer made"),
}
METRICS = {
    "offer_rate": _("Offer rate"),
    "offered_cost_cents": _("Mean cost of offers made"),
    "accepted_cost_cents": _("Mean cost of accepted offers"),
    "save_rate": _("Save rate"),
}
RATE_METRICS = {"offer_rate", "save_rate"}
# What a group large enough to show has none of yet, per metric (a cell of size 0): not a group too small to show.
NOTHING_TO_MEASURE = {
    "offered_cost_cents": _("no offer made"),
    "accepted_cost_cents": _("no offer accepted"),
    "save_rate": _("no renewal results yet"),
}
# Groups with an order of their own are shown in it; any other group after them, by name.
GROUP_ORDER = {"value_tier": ("low", "medium", "high"), "segment": ("consumer", "business")}
PERCENTAGE_POINTS = _("%(number)s pt")
ATTRIBUTES = {
    "segment": _("Segment"),
    "value_tier": _("Value tier"),
    "gender": _("Gender"),
    "age_band": _("Age band"),
}
# Groups shown in words; any other group (a CRM's own protected values) is shown as stored.
GROUP_WORDS = {
    "female": _("Female"),
    "male": _("Male"),
    Customer.Segment.CONSUMER: _("Consumer"),
    Customer.Segment.BUSINESS: _("Business"),
    Customer.ValueTier.LOW: _("Low"),
    Customer.ValueTier.MEDIUM: _("Medium"),
    Customer.ValueTier.HIGH: _("High"),
}


# --- the offer log ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferRef:
    code: str
    title: str


@dataclass(frozen=True)
class LogRow:
    decision_id: str
    made_at: dt.datetime
    customer_number: str
    customer_name: str
    panel_url: str
    agent: str  # the agent and team the advice was made for: "" for advice a CRM asked for without an agent
    team: str
    channel: str
    risk_band: str  # "" and churn_percent None: the customer objected to profiling, so their score is not shown
    churn_percent: int | None
    recommended: OfferRef | None
    explored: bool
    control_group: bool
    greedy_code: str
    propensity: float
    made: tuple[OfferRef, ...]
    accepted: OfferRef | None
    declined: tuple[OfferRef, ...]
    outcome: str
    escalated: bool
    override_reasons: tuple[str, ...]
    cost_cents: int
    # Whom the decision counts for per agent (the advised agent, or who first logged on advice without one), and
    # the team whose budget the accepted offer spends: "" for none.
    credited_agent: str = ""
    charged_team: str = ""

    @property
    def risk_label(self) -> str:
        return labels.label(labels.RISK_BANDS, self.risk_band) if self.risk_band else ""

    @property
    def channel_label(self) -> str:
        return labels.label(labels.CHANNELS, self.channel)

    @property
    def outcome_label(self) -> str:
        return str(OUTCOMES[self.outcome])

    @property
    def override_labels(self) -> list[str]:
        return [labels.label(labels.OVERRIDE_REASONS, reason) for reason in self.override_reasons]


def log_row(decision: Decision) -> LogRow:
    """One line of the offer log; the decision comes as `offer_log_decisions` loads it."""
    summary = prefetched_summary(decision)
    offer = _offer_refs(decision)
    return LogRow(
        decision_id=str(decision.pk),
        made_at=decision.as_of,
        customer_number=decision.customer.external_id,
        customer_name=decision.customer.display_name,
        panel_url=panel_url(customer=decision.customer, decision_id=decision.pk),
        agent=_person(decision.agent),
        team=decision.team.name if decision.team else "",
        channel=decision.channel,
        # A customer who objected to profiling is no longer read by their score, here or anywhere (article 21(3)).
        risk_band="" if decision.customer.objects_to_profiling else decision.risk_band,
        churn_percent=None if decision.customer.objects_to_profiling else round(decision.churn_probability * 100),
        recommended=offer(decision.recommended_offer_code) if decision.recommended_offer_code else None,
        explored=decision.explored,
        control_group=decision.control_group,
        greedy_code=decision.greedy_offer_code,
        propensity=decision.propensity,
        made=tuple(offer(code) for code in summary.made_codes),
        accepted=offer(summary.accepted_code) if summary.accepted_code else None,
        declined=tuple(offer(code) for code in summary.declined_codes),
        outcome=summary.outcome,
        escalated=summary.escalated,
        override_reasons=summary.override_reasons,
        cost_cents=summary.accepted_cost_cents,
        credited_agent=_person(_credited_agent(decision, summary.credited_agent_id)),
        charged_team=decision.charged_team_name or "",
    )


def _credited_agent(decision: Decision, user_id: int | None):
    """The credited agent, from the decision or among who logged its prefetched actions (no query)."""
    if decision.agent is not None or user_id is None:
        return decision.agent
    return next((action.agent for action in decision.actions.all() if action.agent_id == user_id), None)


@dataclass(frozen=True)
class EscalationRow:
    escalated_at: dt.datetime
    escalated_by: str
    customer_number: str
    customer_name: str
    agent: str
    offer: OfferRef | None  # None: the call as a whole was escalated
    churn_percent: int
    risk_label: str
    panel_url: str
    for_administrator: bool  # above the viewing lead's own authority: an administrator decides it

    @property
    def asked_by_someone_else(self) -> bool:
        """Asked by someone other than the agent the advice was for (their lead, or a CRM): worth naming."""
        return bool(self.escalated_by) and self.escalated_by != self.agent


def escalation_row(escalation: OpenEscalation, *, for_administrator: bool = False) -> EscalationRow:
    decision = escalation.decision
    return EscalationRow(
        escalated_at=escalation.escalated_at,
        escalated_by=escalation.escalated_by,
        customer_number=decision.customer.external_id,
        customer_name=decision.customer.display_name,
        agent=_person(decision.agent),
        offer=_offer_refs(decision)(escalation.offer_code) if escalation.offer_code else None,
        churn_percent=round(decision.churn_probability * 100),
        risk_label=labels.label(labels.RISK_BANDS, decision.risk_band),
        panel_url=panel_url(customer=decision.customer, decision_id=decision.pk),
        for_administrator=for_administrator,
    )


def _offer_refs(decision: Decision):
    titles = {offer.get("code"): offer.get("title") for offer in decision.offers or []}

    def ref(code: str) -> OfferRef:
        return OfferRef(code=code, title=in_language(titles.get(code), fallback=code))

    return ref


def _person(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


CSV_HEADER = (
    "decision_id",
    "as_of_utc",
    "customer_id",
    "agent",
    "team",
    "channel",
    "risk_band",
    "churn_percent",
    "recommended_offer",
    "explored",
    "control_group",
    "offers_made",
    "accepted_offer",
    "declined_offers",
    "outcome",
    "escalated",
    "override_reasons",
    "accepted_cost_cents",
    "greedy_offer",
    "propensity",
    # Added after the columns outside tools already read, which keep their names and places.
    "charged_team",
    "credited_agent",
)
# A cell starting with one of these is a formula to a spreadsheet; a CRM name must never run as one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cells(row: LogRow) -> list[str]:
    """The row as CSV cells: codes rather than titles, times in UTC, money in integer cents."""
    cells = [
        row.decision_id,
        row.made_at.astimezone(dt.UTC).isoformat(),
        row.customer_number,
        row.agent,
        row.team,
        row.channel,
        row.risk_band,
        "" if row.churn_percent is None else str(row.churn_percent),
        row.recommended.code if row.recommended else "",
        _yes_no(row.explored),
        _yes_no(row.control_group),
        " ".join(offer.code for offer in row.made),
        row.accepted.code if row.accepted else "",
        " ".join(offer.code for offer in row.declined),
        row.outcome,
        _yes_no(row.escalated),
        " ".join(row.override_reasons),
        str(row.cost_cents),
        row.greedy_code,
        repr(row.propensity),
        row.charged_team,
        row.credited_agent,
    ]
    return [_defused(cell) for cell in cells]


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _defused(cell: str) -> str:
    """The cell with every part a spreadsheet could take for a formula started by an apostrophe. A Dutch Excel
    splits a CSV at semicolons, so "Jan;=1+1" is two cells there: each part between semicolons is checked."""
    return ";".join("'" + part if part.lstrip(" ").startswith(FORMULA_STARTS) else part for part in cell.split(";"))


# --- budget -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetMonth:
    month: dt.date
    teams: list[TeamMonthBudget]


def budget_months(months: list[TeamMonthBudget]) -> list[BudgetMonth]:
    """The budget rows grouped by month, newest first, teams by name."""
    ordered = sorted(months, key=lambda row: (-row.month.toordinal(), row.status.team_name.lower()))
    return [BudgetMonth(month=month, teams=list(rows)) for month, rows in groupby(ordered, key=lambda row: row.month)]


# --- fairness -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FairnessTable:
    """One risk band and one attribute: a row per metric, a column per group."""

    risk_band: str
    attribute: str
    groups: list[str]
    rows: list[Comparison]

    @property
    def risk_label(self) -> str:
        return labels.label(labels.RISK_BANDS, self.risk_band)

    @property
    def attribute_label(self) -> str:
        return labels.label(ATTRIBUTES, self.attribute)

    @property
    def group_labels(self) -> list[str]:
        return [str(GROUP_WORDS.get(group.lower(), group)) for group in self.groups]

    @property
    def title(self) -> str:
        return f"{self.risk_label} · {self.attribute_label}"

    @property
    def flagged(self) -> bool:
        return any(row.flagged for row in self.rows)


@dataclass(frozen=True)
class FairnessCellView:
    text: str
    size: int | None  # None: withheld, the group being small enough to single a customer out; 0: nothing to measure
    judged: bool


@dataclass(frozen=True)
class FairnessRowView:
    metric_label: str
    cells: list[FairnessCellView | None]
    ratio: float | None
    difference: str
    flagged: bool
    may_be_chance: bool = False
    adjusted_p_value: float | None = None


@dataclass(frozen=True)
class FlaggedItem:
    table_number: int
    table_title: str
    metric_label: str
    ratio: float
    may_be_chance: bool = False
    adjusted_p_value: float | None = None


def flagged_items(tables: list[FairnessTable]) -> list[FlaggedItem]:
    """The flagged metrics, each pointing at its table (numbered from 1, as on the page), with whether the gap may
    be chance: the summary must not say more than the table."""
    return [
        FlaggedItem(number, table.title, str(METRICS[row.metric]), row.ratio, row.may_be_chance, row.adjusted_p_value)
        for number, table in enumerate(tables, start=1)
        for row in table.rows
        if row.flagged
    ]


def fairness_tables(report: FairnessReport) -> list[FairnessTable]:
    key = lambda comparison: (comparison.risk_band, comparison.attribute)  # noqa: E731
    tables = []
    for (band, attribute), comparisons in groupby(report.comparisons, key=key):
        comparisons = list(comparisons)
        groups = _in_order(attribute, {cell.group for comparison in comparisons for cell in comparison.cells})
        tables.append(FairnessTable(risk_band=band, attribute=attribute, groups=groups, rows=comparisons))
    return tables


def _in_order(attribute: str, groups: set[str]) -> list[str]:
    """The groups in their own order where they have one (value tiers low to high), else by name."""
    order = GROUP_ORDER.get(attribute, ())
    return sorted(groups, key=lambda group: (order.index(group) if group in order else len(order), group))


def fairness_rows(table: FairnessTable) -> list[FairnessRowView]:
    return [_fairness_row(comparison, table.groups) for comparison in table.rows]


def _fairness_row(comparison: Comparison, groups: list[str]) -> FairnessRowView:
    by_group = {cell.group: cell for cell in comparison.cells}
    return FairnessRowView(
        metric_label=str(METRICS[comparison.metric]),
        cells=[_cell_view(comparison.metric, by_group.get(group)) for group in groups],
        ratio=comparison.ratio,
        difference=metric_text(comparison.metric, comparison.difference, difference=True),
        flagged=comparison.flagged,
        may_be_chance=comparison.may_be_chance,
        adjusted_p_value=comparison.adjusted_p_value,
    )


def _cell_view(metric: str, cell: GroupCell | None) -> FairnessCellView | None:
    if cell is None:
        return None
    if cell.size == 0:
        return FairnessCellView(text=str(NOTHING_TO_MEASURE.get(metric, "–")), size=0, judged=False)
    return FairnessCellView(text=metric_text(metric, cell.value), size=cell.size, judged=cell.judged)


def metric_text(metric: str, value: float | None, *, difference: bool = False) -> str:
    """Rates as percentages (differences in percentage points), costs as euros; "–" when there is no value."""
    if value is None:
        return "–"
    if metric in RATE_METRICS:
        text = percent(value)
        return PERCENTAGE_POINTS % {"number": text.removesuffix("%")} if difference else text
    return euro(round(value))
