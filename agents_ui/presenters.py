"""Turn a stored decision and its action log into what the panel shows, in the agent's language.

Pure functions of their inputs (no queries), so the panel's query count does not grow with the
number of offers or actions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone, translation
from django.utils.translation import gettext

from agents_ui import labels
from agents_ui.review.selectors import OPEN_ESCALATION_DAYS
from agents_ui.talking_points import GENERAL_TALKING_POINT, talking_point
from retention.models import (
    ANSWER_KINDS,
    CORRECTING_KINDS,
    FINAL_ANSWER_KINDS,
    MADE_KINDS,
    Decision,
    DecisionAction,
    offer_hold,
)
from retention.selectors.panel import actor_name
from retention.services.decisions import (
    authority_covers,
    decides_escalation,
    may_make_offer,
    no_action_answers_escalation,
    takes_calls,
)

SHOWN_REASONS = 3
# The panel lists the best three offers (and the recommended one, and any with something logged); the rest are
# one click away, folded.
SHOWN_OFFERS = 3
PRESENT_SHORTCUT_OFFERS = 3
ANSWER_SHORTCUTS = {
    DecisionAction.Kind.ACCEPTED: "a",
    DecisionAction.Kind.DECLINED: "d",
    DecisionAction.Kind.THINKING: "t",
}


def in_language(texts: dict | None, fallback: str = "") -> str:
    """The text in the active language, else in Dutch or English, else the fallback."""
    texts = texts or {}
    language = (translation.get_language() or "nl")[:2]
    return texts.get(language) or texts.get("nl") or texts.get("en") or fallback


@dataclass(frozen=True)
class ReasonView:
    code: str
    text: str
    raises_risk: bool


@dataclass(frozen=True)
class AnswerButton:
    kind: str
    label: str
    shortcut: str


@dataclass(frozen=True)
class Viewer:
    """Who looks at the advice, as far as it changes which offers they may make."""

    authority_level: int = 0
    answers_for_team: bool = False  # of the team the advice is charged to (an administrator: of every team)
    team_lead_level: int = 0  # the highest authority level among that team's leads
    decides_over_budget: bool = False  # a team lead, who may spend beyond the team's budget
    # What the charged team has left this month now; the advice's own flags were set when it was given.
    team_budget_left_cents: int | None = None

    @property
    def leads_team(self) -> bool:
        """The lead of the team the advice is charged to (or an administrator): whom escalations go to."""
        return self.decides_over_budget


@dataclass
class OfferView:
    rank: int
    code: str
    title: str
    kind_label: str
    cost_cents: int
    expected_value_cents: int  # margin kept beyond making no offer, minus the cost, over the policy's horizon
    acceptance_percent: int
    recommended: bool
    needs_team_lead: bool
    needs_override_reason: bool
    viewer: Viewer = Viewer()
    above_authority: bool = False  # the offer's level or cost is above the deciding agent's authority
    offer: dict = field(default_factory=dict)  # as the decision stored it: what authority it needs
    over_team_budget: bool = False  # its cost is more than the team has left this month
    presented: bool = False
    escalated: bool = False
    answer: str = ""
    is_current: bool = False
    another_accepted: bool = False  # another offer stands accepted on this decision: nothing more is made
    made_by: str = ""  # who made it, when not the agent the advice was for (their team lead, an administrator)
    escalated_by_id: int | None = None  # the user who asked a team lead about it last
    asked_and_unanswered: bool = False  # asked about, and nothing made or answered on it since
    turned_down_by: str = ""  # who answered that question with "no action": the one asked, not the one asking
    made_by_administrator: bool = False

    @property
    def can_present(self) -> bool:
        return may_make_offer(
            above_authority=self.above_authority,
            over_team_budget=self.over_team_budget,
            maker_has_authority=self.viewer.answers_for_team
            and authority_covers(self.viewer.authority_level, self.offer),
            decides_over_budget=self.viewer.decides_over_budget,
        )

    @property
    def waits_for_team_lead(self) -> bool:
        """The viewer cannot make this offer: it is for a team lead to make, after escalation."""
        return self.needs_team_lead and not self.can_present

    @property
    def beyond_team_lead(self) -> bool:
        """The offer needs more authority than the team's leads have: an administrator's, whoever looks at it."""
        return self.needs_team_lead and not decides_escalation(self.viewer.team_lead_level, self.offer)

    @property
    def waits_for_administrator(self) -> bool:
        """The offer is above the authority of the team's leads too: an administrator decides."""
        return self.waits_for_team_lead and not decides_escalation(self.viewer.team_lead_level, self.offer)

    @property
    def shows_present_button(self) -> bool:
        """Once presented, the customer's answer is what remains to log; once another offer stands accepted, nothing
        more is made on this decision (the service refuses it)."""
        return self.can_present and not self.presented and not self.another_accepted

    @property
    def shows_escalate_button(self) -> bool:
        """A team lead is asked about an offer they could still make: not once another offer stands accepted."""
        return self.waits_for_team_lead and not self.escalated and not self.another_accepted

    @property
    def present_shortcut(self) -> str:
        return str(self.rank) if self.rank <= PRESENT_SHORTCUT_OFFERS and self.shows_present_button else ""

    @property
    def answer_label(self) -> str:
        return labels.label(labels.ACTION_KINDS, self.answer) if self.answer else ""

    @property
    def answer_buttons(self) -> list[AnswerButton]:
        """The customer's possible answers, until they accepted or declined (a second "accepted" would count twice);
        after that, the one button that corrects a mis-logged answer."""
        if not self.presented:
            return []
        if self.another_accepted:
            # Only the customer's no to this earlier offer remains to log: the service refuses anything more.
            return [] if self.answer in FINAL_ANSWER_KINDS else [self._answer_button(DecisionAction.Kind.DECLINED)]
        if self.answer in FINAL_ANSWER_KINDS:
            return corrections_of(self.answer)
        return [self._answer_button(kind) for kind in ANSWER_SHORTCUTS]

    def _answer_button(self, kind: str) -> AnswerButton:
        shortcut = ANSWER_SHORTCUTS[kind] if self.is_current else ""
        return AnswerButton(kind, labels.label(labels.ACTION_KINDS, kind), shortcut)


def corrections_of(answer: str) -> list[AnswerButton]:
    """What may follow a final answer; the log keeps both. An acceptance logged by mistake is undone, which leaves
    the offer unanswered, as if it had not been logged; a customer who changes their mind declines after all, which
    the learning log counts as their no. Two buttons, so the agent does not log the one for the other. A decline is
    corrected by the acceptance after all."""
    if answer == DecisionAction.Kind.ACCEPTED:
        return [
            AnswerButton(DecisionAction.Kind.DECLINED, gettext("Declined after all"), ""),
            AnswerButton(DecisionAction.Kind.UNDONE, gettext("Undo: logged by mistake"), ""),
        ]
    return [AnswerButton(DecisionAction.Kind.ACCEPTED, gettext("Accepted after all"), "")]


@dataclass(frozen=True)
class ActionView:
    kind: str
    kind_label: str
    offer_title: str
    override_label: str
    actor: str
    created_at: dt.datetime
    agent_id: int | None = None  # the user who logged it; None for a CRM integration


@dataclass
class DecisionPanel:
    decision: Decision
    risk_percent: int
    risk_band: str
    risk_band_label: str
    reasons: list[ReasonView]
    talking_points: list[str]
    offers: list[OfferView]
    more_offers: list[OfferView] = field(default_factory=list)  # ranked lower, shown on request
    actions: list[ActionView] = field(default_factory=list)
    viewer: Viewer = Viewer()
    # Someone was asked to decide and has not yet: the panel then watches the log for their answer.
    escalation_open: bool = False

    @property
    def may_escalate(self) -> bool:
        """Asking a team lead about the whole call is for agents: a team lead would be asking themselves. Once an
        offer stands accepted there is nothing left to ask about, and once the call was asked about it waits for an
        answer (the service refuses asking twice in a row)."""
        return not self.viewer.leads_team and not self.offer_accepted and not self.call_escalated

    @property
    def call_escalated(self) -> bool:
        """The last thing logged asks about the whole call, not about one offer."""
        return (
            bool(self.actions)
            and self.actions[-1].kind == DecisionAction.Kind.ESCALATED
            and not self.actions[-1].offer_title
        )

    @property
    def offer_accepted(self) -> bool:
        """An offer stands accepted: the call's outcome is logged, and "no action" would contradict it."""
        return any(view.answer == DecisionAction.Kind.ACCEPTED for view in [*self.offers, *self.more_offers])

    @property
    def no_offer_needed(self) -> bool:
        """Making no offer is worth most: no offer the agent may make keeps more than it costs."""
        return self.decision.no_offer_needed

    @property
    def best_offer_needs_team_lead(self) -> bool:
        """No offer the agent may make keeps more than it costs, but one that needs a team lead would."""
        return self.no_offer_needed and any(
            offer.expected_value_cents > 0 and offer.needs_team_lead for offer in [*self.offers, *self.more_offers]
        )

    @property
    def no_offer_recommended(self) -> bool:
        """No offer is recommended although one is worth its cost: this decision explores or is in the control group.

        The panel does not say which, so the agent treats the customer as any other.
        """
        return (
            not self.decision.recommended_offer_code
            and not self.decision.no_offer_needed
            and not self.decision.fee_unknown
        )

    @property
    def stay_without_offer_percent(self) -> int:
        """The chance the customer stays if offered nothing, which every offer's expected value is counted against:
        the offer-response model's estimate when one served, else the churn model's."""
        estimate = self.decision.stay_probability_without_offer
        if estimate is None:
            return 100 - self.risk_percent
        return round(estimate * 100)

    @property
    def horizon_months(self) -> int | None:
        return self.decision.horizon_months

    @property
    def best_tariff(self) -> dict | None:
        return self.decision.best_tariff or None


def decision_panel(
    *, decision: Decision, actions: list[DecisionAction], viewer: Viewer = Viewer(), now: dt.datetime | None = None
) -> DecisionPanel:
    """Everything the panel shows about one decision to `viewer`; `actions` are its log, oldest first."""
    reasons = top_reasons(decision.reasons or [])
    offers, more_offers = offer_views(decision, actions, viewer)
    titles = {offer.code: offer.title for offer in [*offers, *more_offers]}
    return DecisionPanel(
        decision=decision,
        risk_percent=round(decision.churn_probability * 100),
        risk_band=decision.risk_band,
        risk_band_label=labels.label(labels.RISK_BANDS, decision.risk_band),
        reasons=reasons,
        talking_points=talking_points(reasons),
        offers=offers,
        more_offers=more_offers,
        actions=[action_view(action, titles) for action in actions],
        viewer=viewer,
        escalation_open=escalation_open(actions, now=now or timezone.now(), offers=decision.offers),
    )


def escalation_open(actions: list[DecisionAction], *, now: dt.datetime, offers: list[dict] | None = None) -> bool:
    """Whether the log (oldest first) holds an escalation still waiting for a decision, by the rule of the
    escalations page (`agents_ui.review.selectors.open_escalations`): an offer asked about stays open until
    someone makes or answers it, someone other than who asked makes another offer instead, the customer accepts
    another, or a "no action" answers it (see `no_action_answers_escalation`); a call escalated as a whole, until
    anything but another escalation is logged; and neither after OPEN_ESCALATION_DAYS. `offers` are the
    decision's."""
    offer_by_code = {offer["code"]: offer for offer in offers or []}
    since = now - dt.timedelta(days=OPEN_ESCALATION_DAYS)
    asked: dict[str, tuple[int | None, int]] = {}  # offer code: the user who asked about it, and when (log position)
    accepted: dict[str, int] = {}  # offer code: when its standing acceptance was logged
    call_asked = False
    for position, action in enumerate(actions):
        if action.kind == DecisionAction.Kind.ESCALATED:
            if action.created_at >= since:
                if action.offer_code:
                    asked[action.offer_code] = (action.agent_id, position)
                else:
                    call_asked = True
            continue
        call_asked = False
        if action.kind == DecisionAction.Kind.ACCEPTED:
            accepted[action.offer_code] = position
        elif action.kind in CORRECTING_KINDS:
            accepted.pop(action.offer_code, None)
        if action.kind == DecisionAction.Kind.NO_ACTION:
            asked = {
                code: question
                for code, question in asked.items()
                if not no_action_answers_escalation(action, offer_by_code.get(code))
            }
        elif action.kind in MADE_KINDS:
            asked = {
                code: (asker, when)
                for code, (asker, when) in asked.items()
                if code != action.offer_code and not made_instead(action.agent_id, asker)
            }
    # No other offer is made while one stands accepted; an acceptance undone or declined leaves the question open.
    open_questions = [
        code
        for code, (_, when) in asked.items()
        if not any(at > when and other != code for other, at in accepted.items())
    ]
    return call_asked or bool(open_questions)


def made_instead(maker_id: int | None, asker_id: int | None) -> bool:
    """An offer made by someone other than the user who asked about another answers that question: the one asked
    chose this instead. The asking agent making an offer while they wait answers nothing."""
    return maker_id is not None and maker_id != asker_id


def top_reasons(reasons: list[dict], limit: int = SHOWN_REASONS) -> list[ReasonView]:
    """The strongest reasons by size of their impact, whichever way they push the risk."""
    ranked = sorted(reasons, key=lambda reason: -abs(reason.get("impact") or 0.0))[:limit]
    return [
        ReasonView(
            code=reason["code"],
            text=in_language(reason.get("text"), fallback=reason["code"]),
            raises_risk=(reason.get("impact") or 0.0) > 0,
        )
        for reason in ranked
    ]


def talking_points(reasons: list[ReasonView]) -> list[str]:
    """A sentence per reason that raises the risk; the general one when none does."""
    points = list(dict.fromkeys(talking_point(reason.code) for reason in reasons if reason.raises_risk))
    return points or [str(GENERAL_TALKING_POINT)]


def offer_views(
    decision: Decision, actions: list[DecisionAction], viewer: Viewer = Viewer()
) -> tuple[list[OfferView], list[OfferView]]:
    """The offers the panel lists (the best three, the recommended one and any with something logged), and the
    rest, folded away; numbered in that order, so the shortcuts 1 to 3 press the first three listed."""
    logged = {action.offer_code for action in actions}
    shown, rest = decision.offers_split(limit=SHOWN_OFFERS, keep=logged)
    # An offer accepted was within the budget then, and what it spent is in the team's figures; one made and still
    # held waits for a yes the budget honours. One whose hold ended, or that was declined, is checked again.
    now = timezone.now()
    made = {action.offer_code for action in actions if action.kind == DecisionAction.Kind.ACCEPTED} | {
        code for code in logged if offer_hold(actions, code, now=now) is not None
    }
    views = [
        _offer_view(rank, offer, decision.recommended_offer_code, viewer, made=offer["code"] in made)
        for rank, offer in enumerate([*shown, *rest], 1)
    ]
    _apply_actions(views, actions, advised_agent_id=decision.agent_id)
    for view in views:
        # Made by whoever has the authority or budget it waited for, it follows the advice (see the service).
        if view.escalated and view.needs_override_reason and decision.outranks_its_choice(view.code):
            view.needs_override_reason = False
    return views[: len(shown)], views[len(shown) :]


def _apply_actions(views: list[OfferView], actions: list[DecisionAction], *, advised_agent_id: int | None) -> None:
    """Each offer's state from the log, oldest action first; the offer presented last is the current one."""
    by_code = {view.code: view for view in views}
    current = None
    for action in actions:
        if action.kind == DecisionAction.Kind.NO_ACTION:
            _mark_turned_down(views, action)
        view = by_code.get(action.offer_code)
        if view is None:
            continue
        if action.kind in MADE_KINDS:
            view.asked_and_unanswered = False
        if action.kind == DecisionAction.Kind.PRESENTED:
            view.presented, current = True, view
            if action.agent_id is not None and advised_agent_id is not None and action.agent_id != advised_agent_id:
                view.made_by = actor_name(action)
                view.made_by_administrator = not takes_calls(action.agent)
        elif action.kind == DecisionAction.Kind.ESCALATED:
            view.escalated, view.escalated_by_id, view.asked_and_unanswered = True, action.agent_id, True
            view.turned_down_by = ""
        elif action.kind in ANSWER_KINDS:
            view.answer = action.kind
        elif action.kind == DecisionAction.Kind.UNDONE:  # an acceptance logged by mistake: no answer yet
            view.answer = ""
    if current is not None:
        current.is_current = True
    accepted = [view.code for view in views if view.answer == DecisionAction.Kind.ACCEPTED]
    for view in views:
        view.another_accepted = bool(accepted) and view.code not in accepted


def _mark_turned_down(views: list[OfferView], no_action: DecisionAction) -> None:
    """The offers a "no action" turned down: asked about and unanswered, the "no action" logged by another user
    than the one who asked (the one who asked ending the call turns nothing down) and answering that question."""
    if no_action.agent_id is None:
        return
    for view in views:
        if not view.asked_and_unanswered or view.escalated_by_id == no_action.agent_id:
            continue
        if no_action_answers_escalation(no_action, view.offer):
            view.turned_down_by, view.asked_and_unanswered = actor_name(no_action), False


def _offer_view(rank: int, offer: dict, recommended_code: str, viewer: Viewer, *, made: bool) -> OfferView:
    cost = int(offer.get("cost_cents") or 0)
    left = viewer.team_budget_left_cents
    spent_since = not made and left is not None and cost > left
    over_team_budget = bool(offer.get("over_team_budget")) or spent_since
    return OfferView(
        rank=rank,
        code=offer["code"],
        title=in_language(offer.get("title"), fallback=offer["code"]),
        kind_label=labels.label(labels.OFFER_KINDS, offer.get("kind", "")),
        cost_cents=cost,
        expected_value_cents=int(offer.get("expected_net_value_cents") or 0),
        acceptance_percent=round((offer.get("expected_acceptance") or 0.0) * 100),
        recommended=offer["code"] == recommended_code,
        needs_team_lead=bool(offer.get("needs_escalation"))
        or not offer.get("within_authority", True)
        or over_team_budget,
        needs_override_reason=offer["code"] != recommended_code,
        viewer=viewer,
        above_authority=not offer.get("within_authority", True),
        offer=offer,
        over_team_budget=over_team_budget,
    )


def action_view(action: DecisionAction, offer_titles: dict[str, str]) -> ActionView:
    return ActionView(
        kind=action.kind,
        kind_label=labels.label(labels.ACTION_KINDS, action.kind),
        offer_title=offer_titles.get(action.offer_code, action.offer_code),
        override_label=labels.label(labels.OVERRIDE_REASONS, action.override_reason) if action.override_reason else "",
        actor=actor_name(action),
        created_at=action.created_at,
        agent_id=action.agent_id,
    )
