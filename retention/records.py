"""Plain records of a customer and their history, as they arrive from a CRM file, the API or the simulator.

They carry no Django state: `customers_upsert` stores them, and `records_to_frames`
turns them into the frames the feature function reads, so a file can be scored
without storing it and still get the same features as a stored customer.
(`retention.mapping_frames` makes the same frames straight from a file's columns.)
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd

from ml.features import ATTRIBUTE_PREFIX, CONTRACT_COLUMNS, DAYS_PER_MONTH, EVENT_COLUMNS, ROW_COLUMNS

# A tenure past this is a typo (or a unit mix-up, days for months): no customer has stayed a century. The same
# century counted back from the as-of date, as a tenure is turned into a signup date, bounds a signup date.
MAX_TENURE_MONTHS = 1200
MAX_TENURE_DAYS = round(MAX_TENURE_MONTHS * DAYS_PER_MONTH)
# An amount (a fee, a discount) of 10,000,000 euros or more is a typo or a unit mix-up, in a file as through the API
# (whose amounts have at most seven whole digits).
MAX_AMOUNT_CENTS = 1_000_000_000

# What a CRM calls the characteristics equal-treatment law and the GDPR protect, in English and in Dutch (the
# grounds of the Algemene wet gelijke behandeling and the special categories of GDPR article 9). Such a field may
# only be kept apart, for the fairness report; sent as an ordinary attribute it would become a model feature and
# sit in the decision log. A name matches when its words, or a run of them, spell one of these without case,
# spaces or punctuation: "Age band", "customer_age", "klant_leeftijd", "GenderCode" and "date_of_birth" all do.
PROTECTED_NAMES = frozenset(
    {
        "gender", "sex", "age", "ageband", "agegroup", "agerange", "birthdate", "dateofbirth", "dob", "birthyear",
        "yearofbirth", "birthday", "seniorcitizen", "senior", "ethnicity", "ethnicorigin", "ethnic", "race",
        "nationality", "citizenship", "countryofbirth", "religion", "religious", "belief", "disability", "disabled",
        "health", "medical", "illness", "diagnosis", "sexualorientation", "pregnancy", "pregnant", "maritalstatus",
        "civilstatus", "politicalopinion", "politicalaffiliation", "tradeunion", "tradeunionmembership",
        "geslacht", "sekse", "leeftijd", "leeftijdscategorie", "leeftijdsgroep", "leeftijdsklasse", "geboortedatum",
        "gebdatum", "geboortejaar", "geboorteland", "nationaliteit", "etniciteit", "afkomst", "herkomst", "ras",
        "religie", "godsdienst", "geloof", "levensovertuiging", "handicap", "beperking", "gezondheid", "ziekte",
        "medisch", "diagnose", "seksuelegeaardheid", "geaardheid", "zwanger", "zwangerschap", "burgerlijkestaat",
        "politiekegezindheid", "vakbond", "vakbondslidmaatschap", "seksueleorientatie", "seksuelevoorkeur",
        "geloofsovertuiging",
        "mv",  # "M/V", man or woman, as Dutch forms write it
        # How a customer is addressed says their gender: "Dhr."/"Mevr.", "Mr"/"Ms".
        "salutation", "honorific", "title", "aanhef", "titel", "aanspreekvorm", "aanspreektitel",
        # Where someone was born or what they first spoke says their origin.
        "placeofbirth", "birthplace", "countryoforigin", "mothertongue", "nativelanguage", "firstlanguage",
        "geboorteplaats", "moedertaal", "landvanherkomst",
        # Health under other names.
        "hearingimpaired", "hearingimpairment", "visuallyimpaired", "visualimpairment", "deaf", "blind",
        "wheelchair", "slechthorend", "slechtziend", "doof", "rolstoel", "chronischziek", "ggz",
        # Criminal records (GDPR article 10), and what marks a customer as vulnerable through debt: offers must
        # not follow it.
        "criminalrecord", "strafblad", "debtrestructuring", "guardianship", "schuldsanering", "bewindvoering",
        "onderbewindstelling", "curatele", "wsnp", "bkr", "bkrregistratie", "creditregistration",
        # Age, gender and origin under short or other names, and what stands for age (a state pension, retirement).
        "sexe", "gndr", "yob", "gebjaar", "geboren", "birthdt", "over65", "aow", "aowgerechtigd", "gepensioneerd",
        "retired", "retiree", "pensioner", "herkomstland", "religieus", "kerkgenootschap", "kerkelijk",
        # A first name (and a surname) says gender and origin as plainly as the fields above.
        "voornaam", "firstname", "givenname", "forename", "achternaam", "lastname", "surname", "familyname",
    }
)  # fmt: skip
# Dutch joins words into one: these stems are long enough to be unmistakable at a word's end ("klantleeftijd") or
# at its start ("geslachtscode", "leeftijdscat", "nationaliteitscode").
PROTECTED_STEMS = (
    "leeftijd", "geslacht", "geboortedatum", "geboortejaar", "geboorteplaats", "nationaliteit", "gezondheid",
    "moedertaal", "slechthorend", "slechtziend", "schuldsanering", "bewindvoering", "herkomst", "religi", "medisch",
    "gepensioneerd",
)  # fmt: skip
# A characteristic of a thing, not of the person: "contract_age", "network_health", "toestelleeftijd".
THING_WORDS = frozenset(
    {
        "contract", "account", "device", "handset", "phone", "line", "network", "connection", "service",
        "subscription", "product", "plan", "tariff", "sim", "modem", "router", "battery", "data", "bill",
        "abonnement", "toestel", "apparaat", "lijn", "netwerk", "verbinding", "dienst", "tarief", "batterij",
    }
)  # fmt: skip


# The most days a tenure's fraction of a month may take off: fewer than any calendar month has, so the whole months
# sent are the whole calendar months the customer card counts back.
MAX_FRACTION_DAYS = 27


def signup_from_tenure(months: float, today: date) -> date:
    """The signup date a tenure in months stands for: its whole months counted back as calendar months (the last
    day of a shorter month where the day does not exist), then its fraction as days. So a tenure of 12 sent today
    reads back as 12 whole months on the customer card and in the offer rules, whatever today's date."""
    whole = int(months)
    month_index = today.year * 12 + today.month - 1 - whole
    year, month = divmod(month_index, 12)
    day = min(today.day, calendar.monthrange(year, month + 1)[1])
    fraction_days = min(MAX_FRACTION_DAYS, round((months - whole) * DAYS_PER_MONTH))
    return date(year, month + 1, day) - timedelta(days=fraction_days)


def looks_protected(name: str) -> bool:
    """Whether a CRM field's name names a protected characteristic (see PROTECTED_NAMES)."""
    words = _words(name)
    if "".join(words) in PROTECTED_NAMES:
        return True
    for start, word in enumerate(words):
        if start > 0 and words[start - 1] in THING_WORDS:
            continue
        if any("".join(words[start:end]) in PROTECTED_NAMES for end in range(start + 1, len(words) + 1)):
            return True
        if word.startswith(PROTECTED_STEMS):
            return True
        if word.endswith(PROTECTED_STEMS) and not word.startswith(tuple(THING_WORDS)):
            return True
    return False


def _words(name: str) -> list[str]:
    """A field name's words in lower case, without accents ("oriëntatie" is "orientatie"): split at punctuation,
    spaces, camelCase ("GenderCode") and where letters meet digits ("Age65Plus" is age, 65, plus)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", str(name)) if not unicodedata.combining(c))
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", plain)
    spaced = re.sub(r"([A-Za-z])([0-9])|([0-9])([A-Za-z])", lambda m: " ".join(g for g in m.groups() if g), spaced)
    return [word for word in re.split(r"[^a-z0-9]+", spaced.lower()) if word]


@dataclass
class ContractRecord:
    monthly_fee_cents: int
    bundle: str = ""
    contract_type: str = ""
    start_date: date | None = None
    end_date: date | None = None
    discount_cents: int = 0
    discount_end: date | None = None
    status: str = "active"


@dataclass
class EventRecord:
    kind: str
    occurred_at: datetime
    value: float | None = None
    note: str = ""


@dataclass
class RenewalRecord:
    result: str
    date: date


@dataclass
class CustomerRecord:
    external_id: str
    display_name: str = ""
    phone: str = ""
    segment: str = "consumer"
    value_tier: str = ""
    signup_date: date | None = None
    region: str = ""
    products: list[str] = field(default_factory=list)
    attributes: dict = field(default_factory=dict)
    protected: dict = field(default_factory=dict)
    # True records an objection to profiling, False lifts it; None (not said) keeps what is stored, so a source
    # that knows nothing of objections never lifts one.
    objects_to_profiling: bool | None = None
    contracts: list[ContractRecord] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    renewals: list[RenewalRecord] = field(default_factory=list)


def records_to_frames(
    records: Sequence[CustomerRecord], *, as_of: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rows, contracts and events frames of `ml.features.build_features`, one row per record."""
    rows = pd.DataFrame([_row(record, as_of) for record in records], columns=ROW_COLUMNS + _attribute_columns(records))
    contracts = pd.DataFrame(
        [_contract_row(record.external_id, c) for record in records for c in record.contracts],
        columns=CONTRACT_COLUMNS,
    )
    events = pd.DataFrame(
        [(record.external_id, e.kind, e.occurred_at, e.value) for record in records for e in record.events],
        columns=EVENT_COLUMNS,
    )
    return rows, contracts, events


def _attribute_columns(records: Iterable[CustomerRecord]) -> list[str]:
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record.attributes))
    return [ATTRIBUTE_PREFIX + name for name in names]


def _row(record: CustomerRecord, as_of: datetime) -> dict:
    row = {
        "key": record.external_id,
        "as_of": as_of,
        "segment": record.segment,
        "value_tier": record.value_tier,
        "region": record.region,
        "signup_date": record.signup_date,
        "products": record.products,
    }
    row.update({ATTRIBUTE_PREFIX + name: value for name, value in record.attributes.items()})
    return row


def _contract_row(key: str, contract: ContractRecord) -> tuple:
    return (
        key,
        contract.bundle,
        contract.contract_type,
        contract.monthly_fee_cents / 100,
        contract.start_date,
        contract.end_date,
        contract.discount_cents / 100,
        contract.discount_end,
    )
