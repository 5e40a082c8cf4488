"""Team budgets: what each team committed (accepted offers) in a calendar month against its monthly budget.

The panel shows the current month of the agent's team; the review pages show the last months of every
team a reviewer may see. Both read through this module, so a budget is counted one way only.

An offer made or accepted counts for the team stored on it when it was logged (`DecisionAction.charged_team`):
the advice's, else the team of the agent who logged it, else for a yes logged without an agent the team that held
the offer. So spending stays with the team it was decided for when an agent moves. An acceptance corrected by a
later decline (or undo) of the same offer on the same decision no longer counts. Months are local calendar months
(settings.TIME_ZONE), as teams plan them.

An offer made and not yet answered holds its cost until the customer answers or the hold ends (`held_until`, the
policy's `offer_hold_days` after it was made): the customer's yes within it, logged for the same team, is honoured
without a second check, so what the team has left this month is the budget less what was accepted and less what is
held. Otherwise every agent could make offers up to the whole remainder at once, and the answers that came in
afterwards would together spend it many times over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from retention.models import CORRECTING_KINDS, HOLDING_KINDS, STANDING_ANSWER_KINDS, DecisionAction, Team

BUDGET_AMBER_PERCENT = 75


@dataclass(frozen=True)
class BudgetStatus:
    team_name: str
    budget_cents: int
    spent_cents: int
    # Offers made and waiting for the customer's answer: counted this month only, the month their yes would spend.
    held_cents: int = 0

    @property
    def committed_cents(self) -> int:
        """Spent, and held for answers still to come: what the team can no longer give away this month."""
        return self.spent_cents + self.held_cents

    @property
    def percent_used(self) -> int | None:
        """Rounded to the nearest whole percent, but never up to the percentage where the status changes (75, 100)
        before the spending reaches it, nor down to 0 once anything is spent."""
        if self.budget_cents <= 0:
            return None
        percent = round(self.committed_cents * 100 / self.budget_cents)
        for threshold in (BUDGET_AMBER_PERCENT, 100):
            if self.committed_cents * 100 < self.budget_cents * threshold:
                percent = min(percent, threshold - 1)
        return max(percent, 1) if self.committed_cents > 0 else 0

    @property
    def level(self) -> str:
        """green below 75% of the budget, amber below 100%, red from 100% (and always when there is no budget)."""
        if self.committed_cents * 100 < self.budget_cents * BUDGET_AMBER_PERCENT:
            return "green"
        if self.committed_cents < self.budget_cents:
            return "amber"
        return "red"

    @property
    def unspent_cents(self) -> int:
        """The budget less what is spent and held: below 0 once the team is over it, which an offer it holds for
        must make up first (see `ml.policy.team_budget_left_for_offer`)."""
        return self.budget_cents - self.committed_cents

    @property
    def remaining_cents(self) -> int:
        return max(0, self.unspent_cents)

    @property
    def overspent_cents(self) -> int:
        """What was spent or is held beyond the budget: offers a team lead made over it, acceptances of offers made
        before the holds counted, or ones whose hold had ended."""
        return max(0, self.committed_cents - self.budget_cents)


@dataclass(frozen=True)
class TeamMonthBudget:
    """One team in one calendar month; `month` is the first day of that month."""

    team_id: int
    month: dt.date
    status: BudgetStatus


def logged_later_on_the_same_offer(kinds: Iterable[str]) -> QuerySet[DecisionAction]:
    """Actions of these kinds logged after the outer action (one logged in the same instant after it by id), on the
    same decision and offer: what corrects an answer, for an `Exists`."""
    return DecisionAction.objects.filter(
        decision_id=OuterRef("decision_id"), offer_code=OuterRef("offer_code"), kind__in=list(kinds)
    ).filter(Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk")))


def accepted_offers() -> QuerySet[DecisionAction]:
    """Acceptances that stand: no later decline of the same offer on the same decision, nor an undo, corrected them.
    Each spends the budget of its `charged_team`."""
    return DecisionAction.objects.filter(kind=DecisionAction.Kind.ACCEPTED).exclude(
        Exists(logged_later_on_the_same_offer(CORRECTING_KINDS))
    )


def standing_acceptance() -> QuerySet[DecisionAction]:
    """For a Decision query: the acceptance that stands on the outer decision, the latest first (see
    `accepted_offers`)."""
    return accepted_offers().filter(decision=OuterRef("pk")).order_by("-created_at", "-pk")


def charged_team_name() -> Subquery:
    """For a Decision query: the name of the team whose budget the outer decision's accepted offer spends; None
    while no acceptance stands. What the API's decision list and the offer log both name."""
    return Subquery(standing_acceptance().values("charged_team__name")[:1])


def held_offers(*, now: dt.datetime) -> QuerySet[DecisionAction]:
    """Offers whose hold has not ended and that wait for the customer's answer, each the latest time its offer was
    made on its decision (a "thinking it over" holds only when it made the offer, so a later time it was made is an
    offer presented): nothing accepted or declined since (or only an acceptance undone), and no other offer
    standing accepted on the decision, nor the same offer made or accepted since on the customer's other advice
    (`taken_elsewhere`). An erased customer's advice takes no more answers, so holds nothing. Each holds
    `held_cents` of its `charged_team`'s budget.

    The same rule for one decision's log, in Python: `retention.models.offer_hold`.
    """
    answer_since = (
        logged_later_on_the_same_offer(STANDING_ANSWER_KINDS).order_by("-created_at", "-pk").values("kind")[:1]
    )
    another_accepted = (
        accepted_offers().filter(decision_id=OuterRef("decision_id")).exclude(offer_code=OuterRef("offer_code"))
    )
    taken_since_elsewhere = taken_elsewhere(
        decision__customer_id=OuterRef("decision__customer_id"),
        offer_code=OuterRef("offer_code"),
        created_at__gt=OuterRef("created_at"),
    ).exclude(decision_id=OuterRef("decision_id"))
    return (
        DecisionAction.objects.filter(
            kind__in=list(HOLDING_KINDS),
            held_until__gt=now,
            held_cents__gt=0,
            decision__customer__erased_at__isnull=True,
        )
        .exclude(Exists(logged_later_on_the_same_offer({DecisionAction.Kind.PRESENTED})))
        .exclude(Exists(another_accepted))
        .exclude(Exists(taken_since_elsewhere))
        .annotate(answer_since=Subquery(answer_since))
        .filter(Q(answer_since__isnull=True) | Q(answer_since=DecisionAction.Kind.UNDONE))
    )


def taken_elsewhere(**lookups) -> QuerySet[DecisionAction]:
    """What ends a customer's hold of an offer on one advice when logged on another after it: the offer accepted
    there (the customer has it; undone or declined later, the hold does not come back, as the team may have given
    the room it freed to other offers), or made there holding its cost (the hold moved to the newer advice)."""
    return DecisionAction.objects.filter(
        Q(kind=DecisionAction.Kind.ACCEPTED) | Q(kind__in=list(HOLDING_KINDS), held_cents__gt=0), **lookups
    )


def held_for_customer(*, customer_id: int, team: Team, now: dt.datetime | None = None) -> dict[str, int]:
    """What `team` holds now for each offer to this customer, on any of their advice: making or accepting the offer
    on their newest advice moves that hold or turns it into spending, so it counts as that offer's own."""
    now = now or timezone.now()
    made = DecisionAction.objects.filter(
        decision__customer_id=customer_id, charged_team=team, held_cents__gt=0, held_until__gt=now
    )
    if not made.exists():  # most customers: a quarter of a millisecond, where the whole rule costs some four
        return {}
    held = (
        held_offers(now=now)
        .filter(decision__customer_id=customer_id, charged_team=team)
        .values("offer_code")
        .annotate(held=Sum("held_cents"))
    )
    return {row["offer_code"]: row["held"] for row in held}


def team_budget_status(*, team: Team, now: dt.datetime | None = None) -> BudgetStatus:
    """What the team committed this calendar month against its monthly budget: accepted, and held for answers still
    to come; two queries."""
    now = now or timezone.now()
    spent = (
        accepted_offers()
        .filter(created_at__gte=month_start(now), charged_team_id=team.pk)
        .aggregate(spent=Sum("cost_cents"))["spent"]
    )
    return BudgetStatus(
        team_name=team.name,
        budget_cents=team.monthly_budget_cents,
        spent_cents=spent or 0,
        held_cents=_held_by_team([team.pk], now=now).get(team.pk, 0),
    )


def _held_by_team(team_ids: list[int], *, now: dt.datetime) -> dict[int, int]:
    rows = (
        held_offers(now=now)
        .filter(charged_team_id__in=team_ids)
        .values("charged_team_id")
        .annotate(held=Sum("held_cents"))
    )
    return {row["charged_team_id"]: row["held"] for row in rows}


def team_budget_months(*, teams: Iterable[Team], months: int, now: dt.datetime | None = None) -> list[TeamMonthBudget]:
    """Every team's budget status in each of the last `months` calendar months (this one included), newest first.

    A month without accepted offers is shown as nothing spent; what is held counts in this month only. Today's budget
    stands for past months too: the model keeps no history of budget changes. Two queries, whatever the number of
    teams.
    """
    teams = list(teams)
    now = now or timezone.now()
    firsts = month_starts(now, months)
    spent = _spent_by_team_month([team.pk for team in teams], since=firsts[-1])
    held = _held_by_team([team.pk for team in teams], now=now)
    return [
        TeamMonthBudget(
            team_id=team.pk,
            month=first.date(),
            status=BudgetStatus(
                team_name=team.name,
                budget_cents=team.monthly_budget_cents,
                spent_cents=spent.get((team.pk, first.date()), 0),
                held_cents=held.get(team.pk, 0) if first == firsts[0] else 0,
            ),
        )
        for first in firsts
        for team in teams
    ]


def _spent_by_team_month(team_ids: list[int], *, since: dt.datetime) -> dict[tuple[int, dt.date], int]:
    local_zone = timezone.get_current_timezone()
    rows = (
        accepted_offers()
        .filter(created_at__gte=since, charged_team_id__in=team_ids)
        .annotate(month=TruncMonth("created_at", tzinfo=local_zone))
        .values("charged_team_id", "month")
        .annotate(spent=Sum("cost_cents"))
    )
    return {(row["charged_team_id"], timezone.localtime(row["month"]).date()): row["spent"] for row in rows}


def day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of `day` in the project's time zone, time-zone aware."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), timezone.get_current_timezone())


def period_bounds(since: dt.date | None, until: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Local calendar days, both included, as aware moments [start of `since`, start of the day after `until`).

    A day at the calendar's edge (the first or last day a date can hold) bounds nothing: it has no moment
    before or after it to compare with.
    """
    start = _day_start(since) if since else None
    end = _day_start(until + dt.timedelta(days=1)) if until and until < dt.date.max else None
    return start, end


def _day_start(day: dt.date) -> dt.datetime | None:
    if day <= dt.date.min + dt.timedelta(days=1):
        return None
    return day_start(day)


def month_start(moment: dt.datetime) -> dt.datetime:
    """Midnight on the first day of `moment`'s local calendar month, time-zone aware."""
    local = timezone.localtime(moment)
    first = dt.datetime(local.year, local.month, 1)
    return timezone.make_aware(first, timezone.get_current_timezone())


def month_starts(moment: dt.datetime, count: int) -> list[dt.datetime]:
    """The starts of `moment`'s month and the `count - 1` months before it, newest first."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    local = timezone.localtime(moment)
    starts = []
    for back in range(count):
        year, month = divmod(local.year * 12 + local.month - 1 - back, 12)
        starts.append(timezone.make_aware(dt.datetime(year, month + 1, 1), timezone.get_current_timezone()))
    return starts
