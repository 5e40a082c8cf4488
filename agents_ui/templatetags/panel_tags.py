"""Template filters and tags of the panel. Money and dates take the Dutch form agents know from the CRM ("€ 1.234,50",
"23-11-2026") in every language; words for stored codes come in the agent's language."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext, ngettext

from agents_ui import labels
from agents_ui.presenters import in_language
from ml.verdicts import decimals_telling_apart, english_number, is_phrase, render
from retention.models import Customer

register = template.Library()


@register.filter
def euro(cents: int | None) -> str:
    """Integer cents as money in the page's language: in Dutch 123450 -> "€ 1.234,50" and -1250 -> "€ -12,50", in
    English "€1,234.50" and "-€12.50"; "" for None."""
    if cents is None or cents == "":
        return ""
    cents = int(cents)
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    if translation.get_language() == "en":
        return f"{sign}€{whole:,}.{rest:02d}"
    # A non-breaking space: an amount never breaks after its sign, in a narrow panel or at 200% zoom.
    return f"€\u00a0{sign}{whole:,}".replace(",", ".") + f",{rest:02d}"


@register.filter
def percent(share: float | None) -> str:
    """A share (0 to 1) as a percentage with one decimal, a half rounded up (5 of 8 is 62,5%, 1 of 6 is 16,7%), in
    the page's number format; "–" without a share."""
    if share is None:
        return "–"
    number = Decimal(repr(share * 100)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{formats.number_format(number, decimal_pos=1)}%"


@register.simple_tag
def figures_apart(*values: float) -> str:
    """Figures side by side ("0,734 / 0,731"), with as many decimals as tell two that differ apart."""
    decimals = decimals_telling_apart([float(value) for value in values])
    return " / ".join(formats.number_format(round(float(value), decimals), decimal_pos=decimals) for value in values)


@register.filter
def signed_euro(cents: int | None) -> str:
    """Cents as money with an explicit sign, for a gain or a loss: 420 -> "+ € 4,20", -2760 -> "− € 27,60"."""
    if cents is None or cents == "":
        return ""
    cents = int(cents)
    if cents == 0:
        return euro(0)
    return ("+\u00a0" if cents > 0 else "\u2212\u00a0") + euro(abs(cents))


@register.filter
def nl_date(value: dt.date | dt.datetime | None) -> str:
    """A date (or a moment, in local time) as day-month-year: "23-11-2026"."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return value.strftime("%d-%m-%Y")


@register.filter
def nl_datetime(value: dt.datetime | None) -> str:
    """A moment in local time: "23-11-2026 14:05"."""
    if value is None or value == "":
        return ""
    return timezone.localtime(value).strftime("%d-%m-%Y %H:%M")


@register.filter
def translated(texts: dict | None, fallback: str = "") -> str:
    """The active language's text from a {"nl": ..., "en": ...} dict."""
    return in_language(texts, fallback=fallback)


@register.filter
def verdict(reason_phrase: dict | None, english: str = "") -> str:
    """A model decision's reason (a phrase of ml.verdicts) in the reader's language, its figures in the
    language's number format; the stored English text where the decision has no phrase (those made before)."""
    if not is_phrase(reason_phrase):
        return english
    separator = formats.get_format("DECIMAL_SEPARATOR")
    return render(
        reason_phrase,
        translate=gettext,
        number=lambda value, decimals: english_number(value, decimals).replace(".", separator),
    )


@register.filter
def tenure(months: int | None) -> str:
    """Months as "2 years and 3 months", "1 year" or "7 months"; "" when unknown."""
    if months is None or months == "":
        return ""
    years, rest = divmod(int(months), 12)
    year_text = ngettext("%(count)d year", "%(count)d years", years) % {"count": years}
    month_text = ngettext("%(count)d month", "%(count)d months", rest) % {"count": rest}
    if years and rest:
        return gettext("%(years)s and %(months)s") % {"years": year_text, "months": month_text}
    return year_text if years else month_text


@register.filter
def channel_label(code: str) -> str:
    return labels.label(labels.CHANNELS, code)


@register.filter
def action_label(code: str) -> str:
    return labels.label(labels.ACTION_KINDS, code)


@register.filter
def budget_label(level: str) -> str:
    return labels.label(labels.BUDGET_LEVELS, level)


@register.filter
def feature_label(name: str) -> str:
    return labels.feature_label(name)


@register.simple_tag
def fresh_key() -> str:
    """A new idempotency key for one action form."""
    return uuid.uuid4().hex


@register.simple_tag
def customer_panel_url(customer: Customer, channel: str = "") -> str:
    return customer_panel_address(customer.external_id, channel)


def customer_panel_address(external_id: str, channel: str = "") -> str:
    """The panel of the customer as they are now, without any earlier advice; on the call's channel if given."""
    parameters = {"customer": external_id}
    if channel:
        parameters["channel"] = channel
    return reverse("panel") + "?" + urlencode(parameters)
