"""A synthetic Dutch telecom customer base with two years of history and a hidden truth per customer.

Plain Python and numpy, no Django: the caller passes today's tariffs in and stores
what comes out. Every draw comes from one seeded generator and is made for the
whole base at once, so a seed always gives the same base and 100,000 customers
take seconds.

Each customer has one renewal moment. About seven in ten lie in the past two years
and carry a label (renewed or churned, drawn from the hidden leave probability);
about one in six fall in the next 90 days, unlabelled: those are the customers the
agents will talk to. A month-to-month contract carries its yearly price-review date
as its end date: that is when such customers weigh leaving, so it is their renewal
moment too.

The hidden leave probability is computed from what the history shows at that
moment (price above what a new customer pays, recent complaints and outages, a
falling NPS, short tenure, a month-to-month contract, competitor offers, payment
problems) plus a persona nobody observes and some noise, so a good model ranks
customers well but not perfectly.

Days are held as integer offsets from `today` (negative in the past) until the
records are built.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from retention.records import ContractRecord, CustomerRecord, EventRecord, RenewalRecord

PERSONAS = ("price_sensitive", "service_sensitive", "loyal", "leaving_anyway", "deal_seeker")
PERSONA_SHARES = (0.30, 0.24, 0.30, 0.08, 0.08)
OFFER_KINDS = ("discount", "gift", "upgrade", "service_recovery")
EVENT_KINDS = ("contact", "complaint", "outage", "nps", "payment_problem", "competitor_offer")
BUSINESS_TARIFF_PREFIX = "zakelijk_"
BUSINESS_SHARE = 0.10

HISTORY_DAYS = 730
SOON_DAYS = 90
RECENT_DAYS = 90
# Past renewals fall no earlier than this, so a two-year contract signed then still runs
# beyond the coming 90 days and nobody has a second renewal in view.
EARLIEST_PAST_RENEWAL = SOON_DAYS + 1 - 730
DAYS_PER_MONTH = 30.4375
SECONDS_PER_DAY = 86_400

CONTRACT_TYPES = ("1 jaar", "2 jaar", "maandelijks opzegbaar")
CONTRACT_TERM_DAYS = np.array([365, 730, 365])
MONTH_TO_MONTH = 2
CONTRACT_TYPE_SHARES = {"consumer": (0.45, 0.30, 0.25), "business": (0.30, 0.60, 0.10)}
# Which renewal moment a customer gets: (past two years, next 90 days, later). The past
# share is above the target because customers too new for a past renewal move forward.
RENEWAL_GROUP_SHARES = (0.77, 0.17, 0.06)

# Per year of tenure the fee rose by this share through yearly indexation, while the price
# for new customers stayed put: long-standing customers pay more for the same bundle.
LOYALTY_PENALTY_PER_YEAR = 0.03
MAX_LOYALTY_PENALTY = 0.45

# How often a bundle is chosen relative to others; bundles not named here weigh 1.
BUNDLE_POPULARITY = {"internet_tv": 3.0, "alles_in_1": 2.0, "internet": 2.0, "internet_tv_fixed": 1.5}
PROVINCES = {
    "Zuid-Holland": 0.21,
    "Noord-Holland": 0.17,
    "Noord-Brabant": 0.15,
    "Gelderland": 0.12,
    "Utrecht": 0.08,
    "Overijssel": 0.07,
    "Limburg": 0.06,
    "Friesland": 0.04,
    "Groningen": 0.03,
    "Drenthe": 0.03,
    "Flevoland": 0.025,
    "Zeeland": 0.02,
}
FEMALE_NAMES = (
    "Sanne", "Emma", "Julia", "Lotte", "Anouk", "Fleur", "Sophie", "Eva", "Lisa", "Iris",
    "Maria", "Anna", "Ingrid", "Marieke", "Petra", "Els", "Fatima", "Yasmina", "Noor", "Mila",
)  # fmt: skip
MALE_NAMES = (
    "Jan", "Pieter", "Daan", "Sem", "Lucas", "Bram", "Thijs", "Ruben", "Jeroen", "Kees",
    "Henk", "Willem", "Gerrit", "Mohammed", "Youssef", "Mehmet", "Stefan", "Niels", "Tim", "Joost",
)  # fmt: skip
SURNAMES = (
    ("de", "Vries"), ("van", "Dijk"), ("van der", "Berg"), ("", "Jansen"), ("", "Bakker"),
    ("van den", "Heuvel"), ("de", "Boer"), ("", "Visser"), ("", "Smit"), ("", "Meijer"),
    ("de", "Jong"), ("", "Mulder"), ("de", "Graaf"), ("van", "Leeuwen"), ("", "Dekker"),
    ("", "Brouwer"), ("de", "Wit"), ("", "Dijkstra"), ("van der", "Meer"), ("van der", "Linden"),
    ("", "Kok"), ("de", "Haan"), ("", "Vermeulen"), ("van den", "Broek"), ("", "Hendriks"),
    ("", "Peters"), ("", "Hoekstra"), ("", "Koster"), ("van", "Beek"), ("", "Postma"),
    ("", "Huisman"), ("van der", "Veen"), ("", "Yilmaz"), ("el", "Amrani"), ("", "Nguyen"),
)  # fmt: skip
BUSINESS_TRADES = (
    "Bakkerij", "Installatiebedrijf", "Kapsalon", "Autobedrijf", "Administratiekantoor",
    "Schildersbedrijf", "Fysiotherapie", "Bloemenhandel", "Transportbedrijf", "Tandartspraktijk",
)  # fmt: skip
AGE_BANDS = ("18-34", "35-49", "50-64", "65+")
AGE_BAND_SHARES = (0.24, 0.27, 0.27, 0.22)
EVENT_NOTES = {
    "contact": ("Vraag over factuur", "Verhuisvraag", "Vraag over zenders", "Wachtwoord wifi vergeten"),
    "complaint": ("Wifi valt steeds weg", "Monteur niet op afspraak", "Factuur hoger dan verwacht",
                  "Lange wachttijd klantenservice"),
    "outage": ("Storing internet in de wijk", "Storing tv-signaal", "Storing mobiel netwerk"),
    "nps": ("",),
    "payment_problem": ("Incasso gestorneerd", "Betalingsherinnering verstuurd"),
    "competitor_offer": ("Noemt aanbod van andere aanbieder", "Heeft lagere prijs gezien bij concurrent"),
}  # fmt: skip

# Per persona (rows in PERSONAS order), the events a year in ordinary times (columns in EVENT_KINDS order).
EVENT_RATES_PER_YEAR = np.array(
    [
        [1.8, 0.25, 0.40, 0.8, 0.20, 0.30],
        [2.4, 0.55, 0.70, 0.8, 0.08, 0.10],
        [1.2, 0.12, 0.40, 0.9, 0.05, 0.05],
        [1.5, 0.35, 0.45, 0.6, 0.25, 0.40],
        [2.2, 0.20, 0.40, 0.7, 0.10, 0.55],
    ]
)
# Extra events expected in the 90 days before the renewal moment: what drives each persona shows there.
RENEWAL_BURST = np.array(
    [
        [0.8, 0.20, 0.00, 0.3, 0.15, 0.60],
        [0.8, 0.90, 0.60, 0.3, 0.00, 0.10],
        [0.3, 0.05, 0.00, 0.3, 0.00, 0.05],
        [0.5, 0.30, 0.00, 0.3, 0.10, 0.80],
        [1.0, 0.10, 0.00, 0.3, 0.00, 1.20],
    ]
)
NPS_BASE = np.array([6.5, 6.2, 8.3, 4.5, 6.0])
NPS_DROP_BEFORE_RENEWAL = np.array([1.0, 2.2, 0.3, 2.0, 0.6])
NPS_DROP_DAYS = 180
# Loyal customers stay longer: the tenure draw is Beta(a, b) scaled to 1..180 months.
TENURE_BETA = np.array([[1.2, 2.6], [1.2, 2.6], [1.8, 1.8], [1.0, 3.5], [1.0, 2.8]])

# The hidden leave chance, on the logit scale.
LEAVE_INTERCEPT = np.array([-2.75, -2.85, -3.85, 0.25, -2.15])
LEAVE_PRICE_WEIGHT = np.array([3.5, 1.0, 0.8, 0.5, 3.0])  # per share paid above the new-customer price
LEAVE_SERVICE_WEIGHT = np.array([0.5, 1.3, 0.4, 0.3, 0.3])  # per recent complaint or outage
LEAVE_COMPETITOR_WEIGHT = np.array([0.5, 0.2, 0.3, 0.3, 0.6])  # per competitor offer mentioned lately
LEAVE_SHORT_TENURE = 0.5
LEAVE_MONTH_TO_MONTH = 0.5
LEAVE_PAYMENT_PROBLEM = 0.35
LEAVE_NPS_FALL = 0.15  # per point the latest NPS answer fell
LEAVE_NPS_LOW = 0.08  # per point the latest NPS answer lies below 6
LEAVE_NOISE = 0.4

# Share of the leave chance each offer kind removes (columns in OFFER_KINDS order).
OFFER_EFFECTS = np.array(
    [
        [0.45, 0.15, 0.15, 0.05],
        [0.10, 0.10, 0.20, 0.45],
        [0.10, 0.08, 0.08, 0.08],
        [0.02, 0.01, 0.01, 0.00],
        [0.35, 0.30, 0.20, 0.02],
    ]
)
PUSHINESS_BETA = np.array([[4.0, 3.0], [3.0, 4.0], [2.0, 5.0], [3.0, 3.0], [6.0, 2.0]])
PRIOR_DISCOUNT_CHANCE = np.array([0.25, 0.15, 0.10, 0.15, 0.60])


@dataclass(frozen=True)
class TariffSpec:
    """A bundle as sold today, to consumers or to businesses (the catalog's `segment`). Without a segment, codes
    starting with `zakelijk_` are business bundles."""

    code: str
    products: tuple[str, ...]
    monthly_fee_cents: int
    segment: str = ""

    def __post_init__(self) -> None:
        if not self.segment:
            business = self.code.startswith(BUSINESS_TARIFF_PREFIX)
            object.__setattr__(self, "segment", "business" if business else "consumer")


@dataclass
class SimulatedCustomer:
    """A customer as a CRM would send it, with the hidden truth of their renewal moment."""

    record: CustomerRecord
    persona: str
    leave_probability: float
    offer_effects: dict[str, float]
    pushiness: float
    renewal_date: dt.date

    @property
    def labelled(self) -> bool:
        return bool(self.record.renewals)


@dataclass
class _Events:
    """All events of the base as parallel arrays, sorted by customer and time."""

    customer: np.ndarray
    kind: np.ndarray
    day: np.ndarray  # fractional day offset from today
    value: np.ndarray  # NaN when the kind carries no value
    note: np.ndarray

    def select(self, mask: np.ndarray) -> _Events:
        return _Events(self.customer[mask], self.kind[mask], self.day[mask], self.value[mask], self.note[mask])


def simulate_base(
    *,
    n: int,
    seed: int,
    today: dt.date,
    tariffs: Mapping[str, TariffSpec],
    offer_effects: Mapping[str, Mapping[str, float]] | None = None,
) -> list[SimulatedCustomer]:
    """`n` customers with two years of history up to `today`, the same for the same seed and tariffs.

    `offer_effects` replaces the share of the leave chance an offer kind removes for a persona
    (see `offer_effects_table`), so a policy can be tried on a base that answers offers otherwise
    than the one it was built beside; everything else about the customers stays the same.

    Precondition: `tariffs` holds at least one consumer bundle; business customers take a
    `zakelijk_` bundle when there is one, else a consumer bundle.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    effects_table = offer_effects_table(offer_effects or {})
    specs = [tariffs[code] for code in sorted(tariffs)]
    if not any(spec.segment == "consumer" for spec in specs):
        raise ValueError("simulate_base needs at least one consumer tariff (a code not starting with 'zakelijk_')")
    rng = np.random.default_rng(seed)
    base = _draw_base(rng, n, specs)
    events = _draw_events(rng, base)
    base["leave_probability"] = _leave_probability(rng, base, events)
    _draw_labels(rng, base)
    return _build_customers(rng, base, _without_events_after_churn(base, events), specs, today, effects_table)


def offer_effects_table(overrides: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """`OFFER_EFFECTS` with the shares `overrides` names by persona and offer kind replaced.

    Unknown personas or kinds and shares outside [0, 1] are refused, naming them, so a typo
    cannot leave a base answering as the default one does.
    """
    table = OFFER_EFFECTS.copy()
    if not isinstance(overrides, Mapping):
        raise ValueError("offer effects must map personas to {offer kind: share removed}")
    for persona, shares in overrides.items():
        if persona not in PERSONAS:
            raise ValueError(f"unknown persona {persona!r}; known: {', '.join(PERSONAS)}")
        if not isinstance(shares, Mapping):
            raise ValueError(f"the effects of {persona!r} must map offer kinds to shares")
        for kind, share in shares.items():
            if kind not in OFFER_KINDS:
                raise ValueError(f"unknown offer kind {kind!r} for {persona!r}; known: {', '.join(OFFER_KINDS)}")
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
                raise ValueError(f"the share {persona}.{kind} must be a number from 0 to 1, not {share!r}")
            table[PERSONAS.index(persona), OFFER_KINDS.index(kind)] = float(share)
    return table


def _draw_base(rng: np.random.Generator, n: int, specs: list[TariffSpec]) -> dict[str, np.ndarray]:
    """Who the customers are, what they have and when their renewal moment falls."""
    base: dict[str, np.ndarray] = {}
    base["persona"] = rng.choice(len(PERSONAS), size=n, p=PERSONA_SHARES)
    base["business"] = rng.random(n) < BUSINESS_SHARE
    base["signup"] = -_draw_tenure_days(rng, base["persona"])
    base["tariff"] = _draw_tariffs(rng, base["business"], specs)
    base["new_fee"] = np.array([spec.monthly_fee_cents for spec in specs])[base["tariff"]]
    base["contract_type"] = _draw_contract_types(rng, base["business"])
    base["term"] = CONTRACT_TERM_DAYS[base["contract_type"]]
    base["renewal"] = _draw_renewal_days(rng, base["signup"], base["term"])
    base["start"] = base["renewal"] - base["term"]
    base["as_of"] = np.minimum(base["renewal"], 0)
    _draw_fees(rng, base)
    return base


def _draw_tenure_days(rng: np.random.Generator, persona: np.ndarray) -> np.ndarray:
    shape = TENURE_BETA[persona]
    months = 1 + rng.beta(shape[:, 0], shape[:, 1]) * 179
    return np.round(months * DAYS_PER_MONTH).astype(np.int64)


def _draw_tariffs(rng: np.random.Generator, business: np.ndarray, specs: list[TariffSpec]) -> np.ndarray:
    consumer = _tariff_choice(rng, [i for i, spec in enumerate(specs) if spec.segment == "consumer"], specs, business)
    business_bundles = [i for i, spec in enumerate(specs) if spec.segment == "business"]
    if not business_bundles:
        return consumer
    return np.where(business, _tariff_choice(rng, business_bundles, specs, business), consumer)


def _tariff_choice(
    rng: np.random.Generator, indices: list[int], specs: list[TariffSpec], like: np.ndarray
) -> np.ndarray:
    weights = np.array([BUNDLE_POPULARITY.get(specs[i].code, 1.0) for i in indices])
    return np.array(indices)[rng.choice(len(indices), size=len(like), p=weights / weights.sum())]


def _draw_contract_types(rng: np.random.Generator, business: np.ndarray) -> np.ndarray:
    consumer = rng.choice(len(CONTRACT_TYPES), size=len(business), p=CONTRACT_TYPE_SHARES["consumer"])
    zakelijk = rng.choice(len(CONTRACT_TYPES), size=len(business), p=CONTRACT_TYPE_SHARES["business"])
    return np.where(business, zakelijk, consumer)


def _draw_renewal_days(rng: np.random.Generator, signup: np.ndarray, term: np.ndarray) -> np.ndarray:
    """One renewal moment each: after a full first term, in the past two years, the next 90 days or later."""
    n = len(signup)
    group = rng.choice(3, size=n, p=RENEWAL_GROUP_SHARES)
    first_possible = signup + term
    past_from = np.maximum(EARLIEST_PAST_RENEWAL, first_possible)
    past = past_from + np.floor(rng.random(n) * -past_from).astype(np.int64)  # in [past_from, -1]
    soon = rng.integers(1, SOON_DAYS + 1, size=n)
    later = SOON_DAYS + 1 + np.floor(rng.random(n) * (term - SOON_DAYS)).astype(np.int64)
    renewal = np.select([group == 0, group == 1], [past, soon], later)
    # Customers still in their first term renew when it ends, whatever group they drew.
    renewal = np.maximum(renewal, first_possible)
    return np.where(renewal == 0, 1, renewal)


def _draw_fees(rng: np.random.Generator, base: dict[str, np.ndarray]) -> None:
    """The fee of the contract running up to the renewal moment, its discount and the earlier fee."""
    n = len(base["persona"])
    years_at_start = (base["start"] - base["signup"]) / 365.0
    penalty = LOYALTY_PENALTY_PER_YEAR * years_at_start + rng.normal(0.0, 0.03, n)
    base["fee"] = _round_to_50(base["new_fee"] * (1 + np.clip(penalty, -0.08, MAX_LOYALTY_PENALTY)))
    base["earlier_fee"] = _round_to_50(base["new_fee"] * (1 + rng.normal(0.0, 0.04, n)))
    has_discount = rng.random(n) < PRIOR_DISCOUNT_CHANCE[base["persona"]]
    base["discount"] = np.where(has_discount, _round_to_50(base["fee"] * rng.uniform(0.10, 0.30, n)), 0)
    base["discount_end"] = base["start"] + np.where(rng.random(n) < 0.5, 182, 365)


def _round_to_50(cents: np.ndarray) -> np.ndarray:
    return (np.round(np.asarray(cents, dtype=float) / 50) * 50).astype(np.int64)


def _draw_events(rng: np.random.Generator, base: dict[str, np.ndarray]) -> _Events:
    """Two years of events: a steady rate per persona plus a burst in the 90 days before renewal."""
    window_start = np.maximum(-HISTORY_DAYS, base["signup"]).astype(float)
    steady = _poisson_events(rng, base["persona"], window_start, np.zeros_like(window_start), EVENT_RATES_PER_YEAR)
    burst_start = (base["renewal"] - RECENT_DAYS).astype(float)
    burst = _poisson_events(
        rng, base["persona"], burst_start, base["renewal"].astype(float), RENEWAL_BURST * 365.0 / RECENT_DAYS
    )
    day = np.concatenate([steady[2], burst[2]])
    customer = np.concatenate([steady[0], burst[0]])
    kind = np.concatenate([steady[1], burst[1]])
    seen = (day >= window_start[customer]) & (day < 0)
    customer, kind, day = customer[seen], kind[seen], day[seen]
    order = np.lexsort((day, customer))
    customer, kind, day = customer[order], kind[order], day[order]
    value = _event_values(rng, base, customer, kind, day)
    note = _event_notes(rng, kind)
    return _Events(customer, kind, day, value, note)


def _poisson_events(
    rng: np.random.Generator, persona: np.ndarray, start: np.ndarray, end: np.ndarray, rates: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events at `rates` a year per persona and kind, uniform in each customer's [start, end)."""
    years = np.clip(end - start, 0, None) / 365.0
    counts = rng.poisson(rates[persona] * years[:, None])
    flat = counts.ravel()
    cells = np.repeat(np.arange(flat.size), flat)
    customer, kind = np.divmod(cells, len(EVENT_KINDS))
    day = start[customer] + rng.random(cells.size) * (end - start)[customer]
    return customer, kind, day


def _event_values(
    rng: np.random.Generator, base: dict[str, np.ndarray], customer: np.ndarray, kind: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """Outage hours, and NPS answers that sink in the half year before a renewal for the unhappy personas."""
    value = np.full(len(kind), np.nan)
    outage = kind == EVENT_KINDS.index("outage")
    value[outage] = np.round(rng.lognormal(1.2, 0.9, outage.sum()), 1)
    nps = kind == EVENT_KINDS.index("nps")
    persona = base["persona"][customer[nps]]
    until_renewal = base["renewal"][customer[nps]] - day[nps]
    closing_in = (until_renewal > 0) & (until_renewal <= NPS_DROP_DAYS)
    score = NPS_BASE[persona] - closing_in * NPS_DROP_BEFORE_RENEWAL[persona] + rng.normal(0, 1.4, nps.sum())
    value[nps] = np.clip(np.round(score), 0, 10)
    return value


def _event_notes(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    note = np.empty(len(kind), dtype=object)
    for index, name in enumerate(EVENT_KINDS):
        mask = kind == index
        choices = np.array(EVENT_NOTES[name], dtype=object)
        note[mask] = choices[rng.integers(0, len(choices), mask.sum())]
    return note


def _leave_probability(rng: np.random.Generator, base: dict[str, np.ndarray], events: _Events) -> np.ndarray:
    """The chance to leave at the renewal moment with no offer, from the history seen at that moment."""
    persona = base["persona"]
    seen = _observables(base, events)
    logit = (
        LEAVE_INTERCEPT[persona]
        + LEAVE_PRICE_WEIGHT[persona] * seen["price_gap_share"]
        + LEAVE_SERVICE_WEIGHT[persona] * (0.6 * seen["complaints"] + 0.35 * np.minimum(seen["outages"], 3))
        + LEAVE_COMPETITOR_WEIGHT[persona] * np.minimum(seen["competitor_offers"], 3)
        + LEAVE_PAYMENT_PROBLEM * np.minimum(seen["payment_problems"], 2)
        + LEAVE_SHORT_TENURE * seen["short_tenure"]
        + LEAVE_MONTH_TO_MONTH * (base["contract_type"] == MONTH_TO_MONTH)
        + LEAVE_NPS_FALL * np.maximum(0.0, -seen["nps_trend"])
        + LEAVE_NPS_LOW * np.maximum(0.0, 6.0 - seen["nps_last"])
        + rng.normal(0.0, LEAVE_NOISE, len(persona))
    )
    return 1.0 / (1.0 + np.exp(-logit))


def _observables(base: dict[str, np.ndarray], events: _Events) -> dict[str, np.ndarray]:
    """What a model could see at each customer's as-of date (the renewal moment, or today if that is later)."""
    n = len(base["persona"])
    as_of = base["as_of"]
    discount_running = base["discount_end"] > as_of
    paid = base["fee"] - np.where(discount_running, base["discount"], 0)
    age = as_of[events.customer] - events.day
    before = age > 0
    seen = {
        "price_gap_share": np.clip((paid - base["new_fee"]) / base["new_fee"], -0.2, 0.6),
        "short_tenure": (as_of - base["signup"]) < 24 * DAYS_PER_MONTH,
    }
    for name, kind, window in (
        ("complaints", "complaint", RECENT_DAYS),
        ("outages", "outage", RECENT_DAYS),
        ("competitor_offers", "competitor_offer", RECENT_DAYS),
        ("payment_problems", "payment_problem", 365),
    ):
        hits = before & (age <= window) & (events.kind == EVENT_KINDS.index(kind))
        seen[name] = np.bincount(events.customer[hits], minlength=n)
    seen["nps_last"], seen["nps_trend"] = _nps_seen(
        events.select(before & (events.kind == EVENT_KINDS.index("nps"))), n
    )
    return seen


def _nps_seen(answers: _Events, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's latest NPS answer and its change against the one before (6 and 0 when unknown)."""
    last = np.full(n, 6.0)
    trend = np.zeros(n)
    if len(answers.customer) == 0:
        return last, trend
    is_last = np.append(answers.customer[1:] != answers.customer[:-1], True)
    last[answers.customer[is_last]] = answers.value[is_last]
    has_previous = is_last & np.append(False, answers.customer[1:] == answers.customer[:-1])
    previous_index = np.flatnonzero(has_previous) - 1
    trend[answers.customer[has_previous]] = answers.value[has_previous] - answers.value[previous_index]
    return last, trend


def _draw_labels(rng: np.random.Generator, base: dict[str, np.ndarray]) -> None:
    """Past renewal moments get their outcome; renewed customers start a new contract that day."""
    n = len(base["persona"])
    base["labelled"] = base["renewal"] < 0
    base["churned"] = base["labelled"] & (rng.random(n) < base["leave_probability"])
    # A one-year renewal that would come up again within the next 90 days becomes a two-year one.
    one_year_fits = base["renewal"] + 365 > SOON_DAYS
    base["new_contract_type"] = np.where(one_year_fits & (rng.random(n) < 0.5), 0, 1)
    base["new_fee_after_renewal"] = _round_to_50(base["new_fee"] * (1 + rng.uniform(-0.05, 0.10, n)))


def _without_events_after_churn(base: dict[str, np.ndarray], events: _Events) -> _Events:
    after_churn = base["churned"][events.customer] & (events.day >= base["renewal"][events.customer])
    return events.select(~after_churn)


def _build_customers(
    rng: np.random.Generator,
    base: dict[str, np.ndarray],
    events: _Events,
    specs: list[TariffSpec],
    today: dt.date,
    effects_table: np.ndarray,
) -> list[SimulatedCustomer]:
    n = len(base["persona"])
    people = _draw_people(rng, base["business"], base["new_fee"])
    effects = np.clip(effects_table[base["persona"]] * rng.uniform(0.75, 1.25, (n, len(OFFER_KINDS))), 0.0, 1.0)
    shape = PUSHINESS_BETA[base["persona"]]
    pushiness = rng.beta(shape[:, 0], shape[:, 1]).tolist()
    contracts = _contract_records(base, specs, today)
    events_of = _event_records(events, n, today)
    renewal_dates = _dates(today, base["renewal"])
    signup_dates = _dates(today, base["signup"])
    churned = base["churned"].tolist()
    labelled = base["labelled"].tolist()
    customers = []
    for i in range(n):
        result = "churned" if churned[i] else "renewed"
        record = CustomerRecord(
            external_id=people["external_id"][i],
            display_name=people["display_name"][i],
            phone=people["phone"][i],
            segment=people["segment"][i],
            value_tier=people["value_tier"][i],
            signup_date=signup_dates[i],
            region=people["region"][i],
            products=list(specs[base["tariff"][i]].products),
            protected=people["protected"][i],
            contracts=contracts[i],
            events=events_of[i],
            renewals=[RenewalRecord(result=result, date=renewal_dates[i])] if labelled[i] else [],
        )
        customers.append(
            SimulatedCustomer(
                record=record,
                persona=PERSONAS[base["persona"][i]],
                leave_probability=float(base["leave_probability"][i]),
                offer_effects=dict(zip(OFFER_KINDS, effects[i].tolist(), strict=True)),
                pushiness=pushiness[i],
                renewal_date=renewal_dates[i],
            )
        )
    return customers


def _dates(today: dt.date, offsets: np.ndarray) -> list[dt.date]:
    return (np.datetime64(today, "D") + offsets.astype("timedelta64[D]")).astype(object).tolist()


def _contract_records(
    base: dict[str, np.ndarray], specs: list[TariffSpec], today: dt.date
) -> list[list[ContractRecord]]:
    """Per customer: an earlier contract when there was one, the one up to the renewal moment, and
    for a renewed customer the new one from that day."""
    bundle = [specs[t].code for t in base["tariff"].tolist()]
    signup, start, renewal = (_dates(today, base[name]) for name in ("signup", "start", "renewal"))
    discount_end = _dates(today, base["discount_end"])
    new_type = base["new_contract_type"]
    new_end = _dates(today, base["renewal"] + CONTRACT_TERM_DAYS[new_type])
    had_earlier = (base["start"] - base["signup"] >= 30).tolist()
    renewed = (base["labelled"] & ~base["churned"]).tolist()
    labelled, discount = base["labelled"].tolist(), base["discount"].tolist()
    fee, earlier_fee, fee_after = (base[name].tolist() for name in ("fee", "earlier_fee", "new_fee_after_renewal"))
    contract_type, new_type = base["contract_type"].tolist(), new_type.tolist()
    records = []
    for i in range(len(bundle)):
        contracts = []
        if had_earlier[i]:
            contracts.append(
                ContractRecord(earlier_fee[i], bundle[i], CONTRACT_TYPES[0], signup[i], start[i], status="ended")
            )
        contracts.append(
            ContractRecord(
                fee[i],
                bundle[i],
                CONTRACT_TYPES[contract_type[i]],
                start[i],
                renewal[i],
                discount_cents=discount[i],
                discount_end=discount_end[i] if discount[i] else None,
                status="ended" if labelled[i] else "active",
            )
        )
        if renewed[i]:
            contracts.append(
                ContractRecord(fee_after[i], bundle[i], CONTRACT_TYPES[new_type[i]], renewal[i], new_end[i])
            )
        records.append(contracts)
    return records


def _event_records(events: _Events, n: int, today: dt.date) -> list[list[EventRecord]]:
    """Per customer, their events as records in time order, to the second in UTC."""
    midnight = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
    seconds = np.floor(events.day * SECONDS_PER_DAY).astype(np.int64).tolist()
    kinds = [EVENT_KINDS[k] for k in events.kind.tolist()]
    values = [None if v != v else v for v in events.value.tolist()]  # NaN marks "no value"
    notes = events.note.tolist()
    bounds = np.searchsorted(events.customer, np.arange(n + 1)).tolist()
    return [
        [
            EventRecord(kinds[j], midnight + dt.timedelta(seconds=seconds[j]), values[j], notes[j])
            for j in range(bounds[i], bounds[i + 1])
        ]
        for i in range(n)
    ]


def _draw_people(rng: np.random.Generator, business: np.ndarray, new_fee: np.ndarray) -> dict[str, list]:
    """Identifiers, names, phone numbers, regions, value tiers and protected attributes.

    The value tier follows the bundle and the segment, never the persona.
    """
    n = len(business)
    numbers = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
    female = rng.random(n) < 0.5
    first = np.where(
        female,
        np.array(FEMALE_NAMES, dtype=object)[rng.integers(0, len(FEMALE_NAMES), n)],
        np.array(MALE_NAMES, dtype=object)[rng.integers(0, len(MALE_NAMES), n)],
    )
    surname = rng.integers(0, len(SURNAMES), n)
    trade = rng.integers(0, len(BUSINESS_TRADES), n)
    regions = list(PROVINCES)
    region = rng.choice(len(regions), size=n, p=np.array(list(PROVINCES.values())) / sum(PROVINCES.values()))
    age_band = rng.choice(len(AGE_BANDS), size=n, p=AGE_BAND_SHARES)
    tier_score = (new_fee - 5_500) / 1_500 + business * 1.0 + rng.normal(0.0, 0.8, n)
    value_tier = np.select([tier_score > 0.9, tier_score > -0.6], ["high", "medium"], "low")
    phone = rng.integers(10_000_000, 100_000_000, n)
    return {
        "external_id": [f"NL{number:07d}" for number in numbers],
        "display_name": [
            _business_name(BUSINESS_TRADES[trade[i]], SURNAMES[surname[i]])
            if business[i]
            else _person_name(first[i], SURNAMES[surname[i]])
            for i in range(n)
        ],
        "phone": [f"06-{number:08d}" for number in phone],
        "segment": np.where(business, "business", "consumer").tolist(),
        "region": [regions[r] for r in region],
        "value_tier": value_tier.tolist(),
        "protected": [
            {} if business[i] else {"gender": "female" if female[i] else "male", "age_band": AGE_BANDS[age_band[i]]}
            for i in range(n)
        ],
    }


def _person_name(first: str, surname: tuple[str, str]) -> str:
    infix, name = surname
    return " ".join(part for part in (first, infix, name) if part)


def _business_name(trade: str, surname: tuple[str, str]) -> str:
    # Without a first name in front, Dutch writes the infix with a capital: "Bakkerij Van Dijk".
    infix, name = surname
    infix = infix[:1].upper() + infix[1:]
    return " ".join(part for part in (trade, infix, name) if part)
