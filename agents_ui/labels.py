"""Translated words for the stored codes the panel shows (the model choices carry plain English labels)."""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ml.features import ATTRIBUTE_PREFIX
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


# The churn model's features as a team lead reads them (the drift table names each by its code too).
FEATURES = {
    "tenure_months": _("Tenure (months)"),
    "n_products": _("Number of products"),
    "monthly_fee": _("Monthly fee"),
    "new_customer_fee": _("What a new customer pays"),
    "price_gap_vs_new": _("Pays more than a new customer"),
    "discount_monthly": _("Monthly discount"),
    "discount_ends_in_days": _("Days until the discount ends"),
    "days_to_contract_end": _("Days until the contract ends"),
    "contract_age_months": _("Contract age (months)"),
    "complaints_30d": _("Complaints, last 30 days"),
    "complaints_90d": _("Complaints, last 90 days"),
    "complaints_365d": _("Complaints, last year"),
    "days_since_complaint": _("Days since the last complaint"),
    "outages_30d": _("Outages, last 30 days"),
    "outages_90d": _("Outages, last 90 days"),
    "outages_365d": _("Outages, last year"),
    "contacts_90d": _("Contacts, last 90 days"),
    "contacts_365d": _("Contacts, last year"),
    "payment_problems_365d": _("Payment problems, last year"),
    "competitor_offers_90d": _("Competitor offers mentioned, last 90 days"),
    "nps_last": _("Latest NPS answer"),
    "nps_trend": _("NPS trend"),
    "segment": _("Segment"),
    "value_tier": _("Value tier"),
    "region": _("Region"),
    "products": _("Products"),
    "bundle": _("Bundle"),
    "contract_type": _("Contract type"),
}


def feature_label(name: str) -> str:
    """A feature's name in words; a CRM attribute by its own name, as the CRM calls it."""
    if name.startswith(ATTRIBUTE_PREFIX):
        return gettext("CRM field %(name)s") % {"name": name[len(ATTRIBUTE_PREFIX) :]}
    return label(FEATURES, name)
