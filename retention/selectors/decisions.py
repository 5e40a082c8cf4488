"""Reads of the decision log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Q, QuerySet, Sum

from ml.policy import OfferHistory, PolicySettings
from retention.models import Customer, Decision, DecisionAction
from retention.selectors.budget import accepted_offers, logged_later_on_the_same_offer, month_start


def offers_declined_since(
    *, customer: Customer, since: dt.datetime, except_decision: Decision | None = None
) -> frozenset[str]:
    """Offer codes this customer declined on or after `since`, on any channel (on any decision but
    `except_decision`, when given). A decline corrected by a later acceptance on its decision was logged by
    mistake, and counts for nothing (not even once that acceptance is undone)."""
    accepted_later = logged_later_on_the_same_offer([DecisionAction.Kind.ACCEPTED])
    declined = DecisionAction.objects.filter(
        decision__customer=customer, kind=DecisionAction.Kind.DECLINED, created_at__gte=since
    ).exclude(Exists(accepted_later))
    if except_decision is not None:
        declined = declined.exclude(decision=except_decision)
    return frozenset(declined.values_list("offer_code", flat=True))


def offer_history(
    *, customer: Customer, now: dt.datetime, policy: PolicySettings, except_decision: Decision | None = None
) -> OfferHistory:
    """What the customer declined within the contact policy's days, accepted within `recent_offer_days`, and
    spent of their budget this calendar month; an acceptance a later decline corrected counts for neither.

    Declines on `except_decision` are left out: logging on that decision, a "no" on it is the customer's answer
    to the very offer, which they may still change.
    """
    accepted = accepted_offers().filter(decision__customer=customer)
    spent = accepted.filter(created_at__gte=month_start(now)).aggregate(spent=Sum("cost_cents"))["spent"]
    recent = accepted.filter(created_at__gte=now - dt.timedelta(days=policy.recent_offer_days))
    return OfferHistory(
        declined_recently=offers_declined_since(
            customer=customer,
            since=now - dt.timedelta(days=policy.contact_policy_days),
            except_decision=except_decision,
        ),
        accepted_recently=frozenset(recent.values_list("offer_code", flat=True)),
        spent_this_month_cents=spent or 0,
    )


def decisions_of_teams(team_ids: Iterable[int] | None) -> QuerySet[Decision]:
    """Decisions of these teams; None means every decision, with or without a team. The one team filter of the
    review pages (offer log, KPIs, escalations, fairness), so that they count the same decisions.

    Advice a CRM asked for without an agent belongs to no team, but an agent who acts on it spends their own
    team's budget (retention.selectors.budget): it counts for that team here too, so that the team lead can trace
    every euro their budget shows.
    """
    decisions = Decision.objects.all()
    if team_ids is None:
        return decisions
    team_ids = list(team_ids)
    acted_on_by_the_team = DecisionAction.objects.filter(
        decision=OuterRef("pk"), agent__agent_profile__team_id__in=team_ids
    )
    return decisions.filter(Q(team_id__in=team_ids) | (Q(team__isnull=True) & Q(Exists(acted_on_by_the_team))))


# Decision ids per query: well under the bound databases put on the parameters of one statement.
IDS_PER_QUERY = 500


def stored_json_of(decision_ids: Iterable, fields: tuple[str, ...]) -> list[tuple]:
    """(id, *fields) of these decisions, a query per IDS_PER_QUERY ids: the JSON a decision stores (its offers, its
    features) read only for the decisions that need it, as decoding it for every decision of a long log cost the
    review pages seconds."""
    ids = list(decision_ids)
    rows: list[tuple] = []
    for start in range(0, len(ids), IDS_PER_QUERY):
        rows += Decision.objects.filter(pk__in=ids[start : start + IDS_PER_QUERY]).values_list("id", *fields)
    return rows
