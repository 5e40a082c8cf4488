"""Talking points: one sentence per reason code, so the agent has something better to say than "then just switch"."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

TALKING_POINTS = {
    "price_gap": _("Acknowledge that new customers pay less, and show what we can do about their own price today."),
    "discount_ending": _(
        "Explain when the discount ends and what they will pay after it, before the bill surprises them."
    ),
    # The complaint may be months old and long solved: the point asks rather than calls it open.
    "complaints": _("Start with their complaint: ask whether it was solved, say what was done and what happens next."),
    "outages": _("Acknowledge the outages, tell them what was fixed, and offer to check their connection now."),
    "contacts": _("They have contacted us often: ask what is still not working and solve it in this call."),
    "nps": _("Ask what disappointed them most and take that point seriously before talking about offers."),
    "payment_problems": _("Offer help with payments, such as another payment date or an instalment plan."),
    "competitor_offer": _(
        "Ask what the other provider offers and compare the total cost honestly, including what they keep here."
    ),
    "contract_end": _("The contract ends soon: thank them for their loyalty and talk about what suits them next."),
    # Shown only when tenure raises the risk, which for a customer of months means the start did not go well: a
    # point about a long relationship would contradict the reason beside it.
    "tenure": _("Ask how their time with us has gone so far, and what they expected from us that they did not get."),
    "contract_type": _("Check whether another contract term suits them better."),
    "bundle": _("Check whether their bundle still fits how they use it."),
    "products": _("Go through the products they use and whether they pay for anything they do not need."),
    "monthly_fee": _("Go through the monthly bill together and look for a cheaper fit."),
    "segment": _("Ask what they need from us now and whether that has changed."),
    "value_tier": _("Ask what they value most in the service."),
    "region": _("Ask about coverage and service quality where they live."),
}
ATTRIBUTE_TALKING_POINT = _("Ask about this in the conversation: it weighs on their decision.")
GENERAL_TALKING_POINT = _("Ask what would make them stay, and listen before making an offer.")


def talking_point(code: str) -> str:
    """The sentence for a reason code; a general one for codes from CRM attributes or new codes."""
    if code.startswith("attribute:"):
        return str(ATTRIBUTE_TALKING_POINT)
    return str(TALKING_POINTS.get(code, GENERAL_TALKING_POINT))
