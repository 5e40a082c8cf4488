"""Writes of the offer catalog (tariffs and offers), the policy defaults, and the demo teams and users.

Everything loads from JSON fixtures by natural key (tariff and offer code, team name,
username), so loading the same files again changes nothing. A fixture entry that does
not validate stops the load with a FixtureError naming the file, the entry and the
field, and nothing of that load is kept.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from itertools import pairwise
from numbers import Real
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models, transaction

from ml.policy import EXPLORATION_METHODS
from retention.models import PRODUCTS, AgentProfile, Customer, Offer, PolicyConfig, Tariff, Team, choice_list_problem

RECENT_EVENT_KINDS = frozenset({"complaint", "outage"})
DEMO_PASSWORD_FILE = "demo_password"
POLICY_NUMBERS = {  # key: (lowest, highest) allowed
    "horizon_months": (1, 60),
    "margin_rate": (0.0, 1.0),
    "exploration_share": (0.0, 1.0),
    "control_share": (0.0, 1.0),
    "budget_per_customer_cents": (0, 10_000_000),
    "contact_policy_days": (0, 365),
    "recent_offer_days": (0, 365),
}
AUTHORITY_LEVELS = ("1", "2", "3")


class FixtureError(ValueError):
    """A fixture file that cannot be loaded as it is; the message names the entry and the field."""


@dataclass
class UpsertCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclass
class CatalogSummary:
    tariffs: UpsertCounts = field(default_factory=UpsertCounts)
    offers: UpsertCounts = field(default_factory=UpsertCounts)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    authority_level: int
    team: str
    created: bool
    password_set: bool


@dataclass(frozen=True)
class DemoPassword:
    value: str
    from_settings: bool
    path: Path | None = None


@transaction.atomic
def catalog_load(*, path: Path) -> CatalogSummary:
    """Create or update the tariffs and offers of a catalog fixture by code.

    Fields an entry names are set; fields it leaves out keep their stored value (or the
    default for a new row), so edits an administrator made to those survive a reload.
    """
    data = _read_fixture(path, required={"tariffs": list, "offers": list})
    summary = CatalogSummary()
    for entry in data["tariffs"]:
        label = _entry_label(path, "tariff", entry)
        summary.tariffs.count(_upsert(Tariff, key="code", entry=entry, label=label))
    for entry in data["offers"]:
        label = _entry_label(path, "offer", entry)
        _raise_for(label, {"eligibility": offer_eligibility_errors(entry.get("eligibility", {}))})
        summary.offers.count(_upsert(Offer, key="code", entry=entry, label=label))
    return summary


@transaction.atomic
def policy_defaults_load(*, path: Path) -> PolicyConfig | None:
    """Store the policy fixture as version 1 when no policy exists yet; otherwise leave policies alone.

    Returns the new PolicyConfig, or None when one already existed.
    """
    values = _read_fixture(path, required={"authority": dict, "risk_bands": dict})
    _raise_for(str(path), {"values": policy_values_errors(values)})
    if PolicyConfig.objects.exists():
        return None
    policy = PolicyConfig(version=1, values=values)
    _full_clean(policy, label=str(path))
    policy.save()
    return policy


def demo_password_get() -> DemoPassword:
    """settings.DEMO_PASSWORD when set; otherwise a random one made once and kept in DATA_DIR (mode 0600)."""
    if settings.DEMO_PASSWORD:
        return DemoPassword(value=settings.DEMO_PASSWORD, from_settings=True)
    path = Path(settings.DATA_DIR) / DEMO_PASSWORD_FILE
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(12))
    value = path.read_text().strip()
    if not value:
        raise FixtureError(f"{path} is empty: delete it to have a new demo password made, or set DEMO_PASSWORD")
    return DemoPassword(value=value, from_settings=False, path=path)


def _write_private(path: Path, text: str) -> None:
    # Created with mode 0600 from the start, so the password is never readable by others.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")


@transaction.atomic
def demo_users_ensure(*, path: Path, password: str, reset_passwords: bool) -> list[DemoLogin]:
    """Create or update the demo teams and users of a fixture, each user with an AgentProfile.

    New users get `password`; existing users get it only when `reset_passwords` is true
    (and their password differs), so a second run does not lock anyone out.
    """
    if not password:
        raise FixtureError("demo users need a non-empty password")
    data = _read_fixture(path, required={"teams": list, "users": list})
    for entry in data["teams"]:
        _upsert(Team, key="name", entry=entry, label=_entry_label(path, "team", entry, key="name"))
    return [_demo_user_ensure(entry, path, password, reset_passwords) for entry in data["users"]]


def _demo_user_ensure(entry: dict, path: Path, password: str, reset_passwords: bool) -> DemoLogin:
    label = _entry_label(path, "user", entry, key="username")
    profile_fields = {name: entry[name] for name in ("role", "authority_level", "language") if name in entry}
    unknown = set(entry) - {"username", "first_name", "last_name", "superuser", "team", *profile_fields}
    _raise_for(label, {name: ["is not a field of a demo user"] for name in sorted(unknown)})
    if not entry.get("username"):
        raise FixtureError(f"{label}: username is missing")
    user, created, password_set = _user_upsert(entry, label, password, reset_passwords)
    team = _team(entry.get("team"), label)
    _upsert(AgentProfile, key="user", entry={"user": user, "team": team, **profile_fields}, label=label)
    profile = AgentProfile.objects.get(user=user)
    return DemoLogin(
        username=user.username,
        role=profile.role,
        authority_level=profile.authority_level,
        team=team.name if team else "",
        created=created,
        password_set=password_set,
    )


def _user_upsert(entry: dict, label: str, password: str, reset_passwords: bool) -> tuple[models.Model, bool, bool]:
    """The user of a demo entry, saved only when something changed; (user, created, password set)."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=entry["username"]).first()
    created = user is None
    user = user or user_model(username=entry["username"])
    superuser = bool(entry.get("superuser", False))
    wanted = {
        "first_name": entry.get("first_name", ""),
        "last_name": entry.get("last_name", ""),
        "is_staff": superuser,
        "is_superuser": superuser,
    }
    changed = created or any(getattr(user, name) != value for name, value in wanted.items())
    for name, value in wanted.items():
        setattr(user, name, value)
    password_set = created or (reset_passwords and not user.check_password(password))
    if password_set:
        user.set_password(password)
    _full_clean(user, label=label)
    if changed or password_set:
        user.save()
    return user, created, password_set


def _team(name: str | None, label: str) -> Team | None:
    if name is None:
        return None
    team = Team.objects.filter(name=name).first()
    if team is None:
        raise FixtureError(f"{label}: team {name!r} is not in the fixture's teams")
    return team


def offer_eligibility_errors(rules: object) -> list[str]:
    """What is wrong with an offer's eligibility rules; empty when they are valid."""
    if not isinstance(rules, dict):
        return ["must be an object of rules"]
    checks = {
        "segments": lambda v: choice_list_problem(v, set(Customer.Segment.values)),
        "value_tiers": lambda v: choice_list_problem(v, set(Customer.ValueTier.values)),
        "requires_products": lambda v: choice_list_problem(v, PRODUCTS, of="products"),
        "excludes_products": lambda v: choice_list_problem(v, PRODUCTS, of="products"),
        "min_tenure_months": lambda v: _number_error(v, 0, 600),
        "min_risk": lambda v: _number_error(v, 0.0, 1.0),
        "requires_recent": lambda v: choice_list_problem(v, RECENT_EVENT_KINDS),
    }
    errors = [f"unknown rule {name!r} (known: {', '.join(checks)})" for name in rules if name not in checks]
    for name, value in rules.items():
        if name in checks and (problem := checks[name](value)):
            errors.append(f"{name} {problem}")
    return errors


def policy_values_errors(values: dict) -> list[str]:
    """What is wrong with a set of policy values; empty when the policy code can use them."""
    errors = []
    for name, (low, high) in POLICY_NUMBERS.items():
        if name not in values:
            errors.append(f"{name} is missing")
        elif problem := _number_error(values[name], low, high):
            errors.append(f"{name} {problem}")
    if not isinstance(values.get("price_parity"), bool):
        errors.append("price_parity must be true or false")
    # Optional: a policy stored before the setting existed explores by the PolicySettings default.
    if "exploration_method" in values and (method := values["exploration_method"]) not in EXPLORATION_METHODS:
        errors.append(f"exploration_method must be one of {', '.join(EXPLORATION_METHODS)}, not {method!r}")
    errors += _authority_errors(values.get("authority"))
    bands = values.get("risk_bands") or {}
    medium, high = bands.get("medium"), bands.get("high")
    if _number_error(medium, 0.0, 1.0) or _number_error(high, 0.0, 1.0) or not medium < high:
        errors.append("risk_bands needs medium and high between 0 and 1, medium below high")
    return errors


def _authority_errors(authority: object) -> list[str]:
    if not isinstance(authority, dict) or set(authority) != set(AUTHORITY_LEVELS):
        return [f"authority needs exactly the levels {', '.join(AUTHORITY_LEVELS)}"]
    errors = []
    for level in AUTHORITY_LEVELS:
        limits = authority[level]
        for name, (low, high) in {"max_discount_percent": (0, 100), "max_cost_cents": (0, 10_000_000)}.items():
            if problem := _number_error(limits.get(name) if isinstance(limits, dict) else None, low, high):
                errors.append(f"authority level {level} {name} {problem}")
    return errors or _authority_order_errors(authority)


def _authority_order_errors(authority: dict) -> list[str]:
    """A higher level may do at least what a lower one may: escalation goes up, so an offer a lower level may make
    and a higher one may not would be made by nobody once asked about."""
    errors = []
    for lower, higher in pairwise(AUTHORITY_LEVELS):
        for name in ("max_discount_percent", "max_cost_cents"):
            if authority[higher][name] < authority[lower][name]:
                errors.append(
                    f"authority level {higher} {name} ({authority[higher][name]}) is below level {lower}'s "
                    f"({authority[lower][name]}): a higher level may do at least what a lower one may"
                )
    return errors


def _number_error(value: object, low: float, high: float) -> str:
    if isinstance(value, bool) or not isinstance(value, Real):
        return f"must be a number, not {value!r}"
    return "" if low <= value <= high else f"must be between {low} and {high}, not {value}"


def _upsert(model: type[models.Model], *, key: str, entry: dict, label: str) -> str:
    """Create or update one row by its natural key; returns created, updated or unchanged."""
    names = _field_names(model)
    _raise_for(label, {name: [f"is not a field of {model.__name__}"] for name in entry if name not in names})
    if key not in entry:
        raise FixtureError(f"{label}: {key} is missing")
    instance = model.objects.filter(**{key: entry[key]}).first()
    before = _snapshot(instance, entry) if instance else None
    instance = instance or model()
    for name, value in entry.items():
        setattr(instance, name, value)
    _full_clean(instance, label=label)
    if before == _snapshot(instance, entry):
        return "unchanged"
    instance.save()
    return "created" if before is None else "updated"


def _field_names(model: type[models.Model]) -> set[str]:
    return {f.name for f in model._meta.get_fields() if f.concrete and not f.auto_created}


def _snapshot(instance: models.Model, entry: dict) -> dict:
    return {name: getattr(instance, name) for name in entry}


def _full_clean(instance: models.Model, *, label: str) -> None:
    try:
        instance.full_clean()
    except ValidationError as error:
        raise FixtureError(f"{label}: {_describe(error)}") from error


def _describe(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items())
    return " ".join(error.messages)


def _raise_for(label: str, errors: dict[str, list[str]]) -> None:
    errors = {name: messages for name, messages in errors.items() if messages}
    if errors:
        raise FixtureError(f"{label}: " + "; ".join(f"{name}: {' '.join(m)}" for name, m in errors.items()))


def _entry_label(path: Path, kind: str, entry: object, *, key: str = "code") -> str:
    if not isinstance(entry, dict):
        raise FixtureError(f"{path.name}: every {kind} must be an object, not {entry!r}")
    return f"{path.name}, {kind} {entry.get(key, '(no ' + key + ')')!r}"


def _read_fixture(path: Path, *, required: dict[str, type]) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise FixtureError(f"fixture {path} does not exist") from error
    except json.JSONDecodeError as error:
        raise FixtureError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise FixtureError(f"{path} must hold a JSON object")
    for name, kind in required.items():
        if not isinstance(data.get(name), kind):
            raise FixtureError(f"{path} needs {name!r} as a JSON {'list' if kind is list else 'object'}")
    return data
