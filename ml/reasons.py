"""Reason codes: the model's per-feature contributions, grouped and phrased for agents in nl and en.

A group gathers the features that tell one story ("complaints" covers the 30, 90
and 365-day counts); its impact is the sum of their contributions to the
log-odds, positive when it raises the chance to leave.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from ml.features import ATTRIBUTE_PREFIX

TOP_REASONS = 3

FEATURE_GROUPS = {
    "tenure_months": "tenure",
    "monthly_fee": "monthly_fee",
    "new_customer_fee": "price_gap",
    "price_gap_vs_new": "price_gap",
    "discount_monthly": "discount_ending",
    "discount_ends_in_days": "discount_ending",
    "days_to_contract_end": "contract_end",
    "contract_age_months": "contract_end",
    "complaints_30d": "complaints",
    "complaints_90d": "complaints",
    "complaints_365d": "complaints",
    "days_since_complaint": "complaints",
    "outages_30d": "outages",
    "outages_90d": "outages",
    "outages_365d": "outages",
    "contacts_90d": "contacts",
    "contacts_365d": "contacts",
    "nps_last": "nps",
    "nps_trend": "nps",
    "payment_problems_365d": "payment_problems",
    "competitor_offers_90d": "competitor_offer",
    "contract_type": "contract_type",
    "bundle": "bundle",
    "products": "products",
    "n_products": "products",
    "segment": "segment",
    "value_tier": "value_tier",
    "region": "region",
}


def feature_group(name: str) -> str:
    if name.startswith(ATTRIBUTE_PREFIX):
        return "attribute:" + name[len(ATTRIBUTE_PREFIX) :]
    return FEATURE_GROUPS.get(name, name)


# Groups whose facts, when none is known, are a gap in our records rather than something about the customer: "price
# against new customers unknown" tells an agent nothing to talk about. (No complaint, NPS answer or payment problem on
# record is a fact about the customer, and stays.)
RECORD_GAP_GROUPS = {"price_gap", "monthly_fee", "tenure", "contract_end", "discount_ending", "contract_type", "bundle",
                     "products", "segment", "value_tier", "region"}  # fmt: skip


def top_reasons(
    contributions: pd.Series,
    features: pd.Series,
    *,
    limit: int = TOP_REASONS,
    facts: Mapping[str, Any] | None = None,
    unread: Iterable[str] = (),
) -> list[dict]:
    """The strongest groups for one customer: [{"code", "text": {"nl", "en"}, "impact"}], strongest first; a group
    that is only a gap in the records (see RECORD_GAP_GROUPS, and CRM attributes) is left out. `facts` give a
    feature's value as the records tell it more exactly, for the words only (whole calendar months of tenure);
    `unread`, features whose value the model read as unknown (text where it reads numbers, a level it never saw),
    count as gaps: the records hold something, but not what the model weighed."""
    if unread:
        features = ChainMap(dict.fromkeys(unread), features)
    impacts: dict[str, float] = {}
    members: dict[str, list[str]] = {}
    for name, value in contributions.items():
        group = feature_group(name)
        impacts[group] = impacts.get(group, 0.0) + float(value)
        members.setdefault(group, []).append(name)
    known = {group: impact for group, impact in impacts.items() if not _record_gap(group, members[group], features)}
    ranked = sorted(known.items(), key=lambda item: -abs(item[1]))[:limit]
    told = ChainMap(dict(facts), features) if facts else features
    return [
        {"code": code, "text": phrase(code, told), "impact": round(impact, 4)}
        for code, impact in ranked
        if abs(impact) > 1e-6
    ]


def _record_gap(group: str, names: list[str], features: pd.Series) -> bool:
    is_gap_group = group in RECORD_GAP_GROUPS or group.startswith("attribute:")
    return is_gap_group and all(_present(features.get(name)) in (None, "") for name in names)


def phrase(code: str, features: Mapping[str, Any]) -> dict[str, str]:
    if code.startswith("attribute:"):
        name = code.split(":", 1)[1]
        value = _present(features.get(ATTRIBUTE_PREFIX + name))
        shown = "unknown" if value is None else value
        return {"nl": f"{name}: {'onbekend' if value is None else value}", "en": f"{name}: {shown}"}
    writer = PHRASES.get(code, _generic(code))
    return writer(features)


def _present(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _euro_nl(amount: float) -> str:
    whole = f"{abs(amount):,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return f"€ {whole}"


def _euro_en(amount: float) -> str:
    return f"€{abs(amount):,.2f}"


def _count(features: pd.Series, name: str) -> int:
    value = _present(features.get(name))
    return 0 if value is None else int(value)


def _windowed(features, stem: str, nl_noun: tuple[str, str], en_noun: tuple[str, str]) -> dict[str, str]:
    """ "2 outages in the last month", using the shortest window that has any."""
    windows = [
        ("30d", "de afgelopen maand", "the last month"),
        ("90d", "de afgelopen 3 maanden", "the last 3 months"),
        ("365d", "het afgelopen jaar", "the last year"),
    ]
    for suffix, nl_window, en_window in windows:
        count = _count(features, f"{stem}_{suffix}")
        if count:
            nl = nl_noun[0] if count == 1 else nl_noun[1]
            en = en_noun[0] if count == 1 else en_noun[1]
            return {"nl": f"{count} {nl} in {nl_window}", "en": f"{count} {en} in {en_window}"}
    return {"nl": f"Geen {nl_noun[1]} in het afgelopen jaar", "en": f"No {en_noun[1]} in the last year"}


def _price_gap(features) -> dict[str, str]:
    gap = _present(features.get("price_gap_vs_new"))
    if gap is None:
        return {"nl": "Prijs ten opzichte van nieuwe klanten onbekend", "en": "Price against new customers unknown"}
    if gap > 0.005:
        return {
            "nl": f"Betaalt {_euro_nl(gap)} per maand meer dan een nieuwe klant voor dezelfde bundel",
            "en": f"Pays {_euro_en(gap)} a month more than a new customer for the same bundle",
        }
    return {
        "nl": "Betaalt niet meer dan een nieuwe klant voor dezelfde bundel",
        "en": "Pays no more than a new customer for the same bundle",
    }


def calendar_months(since: dt.date, today: dt.date) -> int:
    """Whole calendar months from `since` to `today`: 26 November to 25 November a year on is 11."""
    return (today.year - since.year) * 12 + today.month - since.month - (today.day < since.day)


def _tenure(features) -> dict[str, str]:
    months = _present(features.get("tenure_months"))
    if months is None:
        return {"nl": "Klantduur onbekend", "en": "Customer since: unknown"}
    # Whole months completed: 23.6 months is "23", not "24". The caller gives calendar months where it knows the
    # signup date (see top_reasons' `facts`), as the customer card counts them; months of average length can run a
    # day and a half either side of those.
    months = max(0, int(months))
    if months >= 24:
        return {"nl": f"Al {months // 12} jaar klant", "en": f"Customer for {months // 12} years"}
    if months == 1:
        return {"nl": "Pas 1 maand klant", "en": "Customer for only 1 month"}
    return {"nl": f"Pas {months} maanden klant", "en": f"Customer for only {months} months"}


def _contract_end(features) -> dict[str, str]:
    days = _present(features.get("days_to_contract_end"))
    if days is None:
        return {"nl": "Geen einddatum van het contract bekend", "en": "No contract end date known"}
    days = int(days)
    if days == 0:
        return {"nl": "Contract loopt vandaag af", "en": "Contract ends today"}
    if days == 1:
        return {"nl": "Contract loopt morgen af", "en": "Contract ends tomorrow"}
    if days == -1:
        return {"nl": "Contract liep gisteren af", "en": "Contract ended yesterday"}
    if days < 0:
        return {"nl": f"Contract liep {-days} dagen geleden af", "en": f"Contract ended {-days} days ago"}
    return {"nl": f"Contract loopt af over {days} dagen", "en": f"Contract ends in {days} days"}


def _discount(features) -> dict[str, str]:
    discount = _present(features.get("discount_monthly")) or 0.0
    days = _present(features.get("discount_ends_in_days"))
    if discount > 0 and days is not None:
        return {
            "nl": f"Korting van {_euro_nl(discount)} per maand loopt af over {int(days)} dagen",
            "en": f"Discount of {_euro_en(discount)} a month ends in {int(days)} days",
        }
    if discount > 0:
        return {
            "nl": f"Heeft {_euro_nl(discount)} korting per maand",
            "en": f"Has a {_euro_en(discount)} monthly discount",
        }
    return {"nl": "Heeft geen lopende korting", "en": "Has no running discount"}


def _nps(features) -> dict[str, str]:
    last = _present(features.get("nps_last"))
    trend = _present(features.get("nps_trend"))
    if last is None:
        return {"nl": "Geen NPS-antwoord bekend", "en": "No NPS answer on record"}
    if trend is not None and trend != 0:
        before = int(last - trend)
        return {"nl": f"NPS-score {int(last)} (was {before})", "en": f"NPS score {int(last)} (was {before})"}
    return {"nl": f"NPS-score {int(last)}", "en": f"NPS score {int(last)}"}


def _monthly_fee(features) -> dict[str, str]:
    fee = _present(features.get("monthly_fee"))
    if fee is None:
        return {"nl": "Maandbedrag onbekend", "en": "Monthly fee unknown"}
    return {"nl": f"Betaalt {_euro_nl(fee)} per maand", "en": f"Pays {_euro_en(fee)} a month"}


def _count_phrase(
    name: str, nl: tuple[str, str], en: tuple[str, str], nl_window: str, en_window: str, *, none: dict[str, str]
):
    def write(features) -> dict[str, str]:
        count = _count(features, name)
        if not count:
            return none
        return {
            "nl": f"{count} {nl[0] if count == 1 else nl[1]} in {nl_window}",
            "en": f"{count} {en[0] if count == 1 else en[1]} in {en_window}",
        }

    return write


def _labelled(nl_label: str, en_label: str, name: str):
    def write(features) -> dict[str, str]:
        value = _present(features.get(name))
        return {"nl": f"{nl_label}: {value or 'onbekend'}", "en": f"{en_label}: {value or 'unknown'}"}

    return write


def _generic(code: str) -> Callable[[pd.Series], dict[str, str]]:
    return lambda features: {"nl": code.replace("_", " "), "en": code.replace("_", " ")}


PHRASES: dict[str, Callable[[pd.Series], dict[str, str]]] = {
    "price_gap": _price_gap,
    "tenure": _tenure,
    "contract_end": _contract_end,
    "discount_ending": _discount,
    "nps": _nps,
    "monthly_fee": _monthly_fee,
    "complaints": lambda f: _windowed(f, "complaints", ("klacht", "klachten"), ("complaint", "complaints")),
    "outages": lambda f: _windowed(f, "outages", ("storing", "storingen"), ("outage", "outages")),
    "contacts": _count_phrase(
        "contacts_90d",
        ("keer contact", "keer contact"),
        ("contact", "contacts"),
        "de afgelopen 3 maanden",
        "the last 3 months",
        none={"nl": "Geen contact opgenomen in de afgelopen 3 maanden", "en": "No contacts in the last 3 months"},
    ),
    "payment_problems": _count_phrase(
        "payment_problems_365d",
        ("betalingsprobleem", "betalingsproblemen"),
        ("payment problem", "payment problems"),
        "het afgelopen jaar",
        "the last year",
        none={"nl": "Geen betalingsproblemen in het afgelopen jaar", "en": "No payment problems in the last year"},
    ),
    "competitor_offer": _count_phrase(
        "competitor_offers_90d",
        ("keer een concurrent genoemd", "keer een concurrent genoemd"),
        ("competitor offer mentioned", "competitor offers mentioned"),
        "de afgelopen 3 maanden",
        "the last 3 months",
        none={
            "nl": "Noemde geen aanbod van een concurrent in de afgelopen 3 maanden",
            "en": "Mentioned no competitor offer in the last 3 months",
        },
    ),
    "contract_type": _labelled("Contractvorm", "Contract type", "contract_type"),
    "bundle": _labelled("Bundel", "Bundle", "bundle"),
    "products": _labelled("Diensten", "Products", "products"),
    "segment": _labelled("Segment", "Segment", "segment"),
    "value_tier": _labelled("Klantwaarde", "Value tier", "value_tier"),
    "region": _labelled("Regio", "Region", "region"),
}
