"""Translated words for the stored codes the panel shows (the model choices carry plain English labels)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from retention.models import Decision, DecisionAction, Offer

ACTION_KINDS = {
    DecisionAction.Kind.PRESENTED: _("Offer presented"),
    DecisionAction.Kind.ACCEPTED: _("Accepted"),
    DecisionAction.Kind.DECLINED: _("Declined"),
    DecisionAction.Kind.THINKING: _("Thinking it over"),
    DecisionAction.Kind.ESCALATED: _("Escalated"),
    DecisionAction.Kind.NO_ACTION: _("No action"),
    DecisionAction.Kind.UNDONE: _("Acceptance undone"),
}

OVERRIDE_REASONS = {
    DecisionAction.OverrideReason.CUSTOMER_REQUEST: _("Customer asked for something else"),
    DecisionAction.OverrideReason.BETTER_FIT: _("Another offer fits the customer better"),
    DecisionAction.OverrideReason.ALREADY_HAS: _("Customer already has the recommended offer"),
    DecisionAction.OverrideReason.SERVICE_ISSUE: _("Unresolved service issue comes first"),
    DecisionAction.OverrideReason.OTHER: _("Other"),
}

CHANNELS = {
    Decision.Channel.PHONE: _("Phone"),
    Decision.Channel.CHAT: _("Chat"),
    Decision.Channel.EMAIL: _("E-mail"),
    Decision.Channel.SHOP: _("Shop"),
    Decision.Channel.API: _("CRM system"),
}

# The channels an agent works in; "api" is for CRM systems.
AGENT_CHANNELS = [Decision.Channel.PHONE, Decision.Channel.CHAT, Decision.Channel.EMAIL, Decision.Channel.SHOP]

RISK_BANDS = {
    "low": _("Low risk"),
    "medium": _("Medium risk"),
    "high": _("High risk"),
}

OFFER_KINDS = {
    Offer.Kind.DISCOUNT: _("Discount"),
    Offer.Kind.GIFT: _("Gift"),
    Offer.Kind.UPGRADE: _("Upgrade"),
    Offer.Kind.SERVICE_RECOVERY: _("Service recovery"),
}

BUDGET_LEVELS = {
    "green": _("Within budget"),
    "amber": _("Budget nearly used"),
    "red": _("Budget used up"),
}


def label(labels: dict, code: str) -> str:
    """The translated label of a code, or the code itself when it is new to the panel."""
    return str(labels.get(code, code))
