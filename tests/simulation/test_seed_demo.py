"""seed_demo: the catalog, the policy defaults and the demo users, loaded once and safe to load again."""

from __future__ import annotations

import json
import stat
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from ml.policy import PolicySettings
from retention.models import AgentProfile, Offer, PolicyConfig, Tariff, Team
from retention.services.catalog import FixtureError, catalog_load, policy_defaults_load
from tests.factories import OfferFactory

FIXTURES = Path(settings.BASE_DIR) / "fixtures"


@pytest.fixture(autouse=True)
def demo_settings(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.DEMO_PASSWORD = ""
    return settings


def seed_demo(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def database_state() -> dict:
    users = get_user_model().objects.order_by("username")
    return {
        "tariffs": list(Tariff.objects.order_by("code").values()),
        "offers": list(Offer.objects.order_by("code").values()),
        "policies": list(PolicyConfig.objects.values()),
        "teams": list(Team.objects.order_by("name").values()),
        "profiles": list(AgentProfile.objects.order_by("user__username").values()),
        "users": list(users.values("username", "password", "is_staff", "is_superuser", "first_name")),
    }


def write_catalog(folder: Path, *, offer_changes: dict | None = None, tariff_changes: dict | None = None) -> Path:
    catalog = json.loads((FIXTURES / "catalog.json").read_text())
    catalog["offers"][0].update(offer_changes or {})
    catalog["tariffs"][0].update(tariff_changes or {})
    path = folder / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


@pytest.mark.django_db
def test_seed_demo_loads_the_tariffs_and_offers_of_every_kind_and_level():
    seed_demo()
    assert {"internet", "internet_tv", "mobile", "alles_in_1"} <= set(Tariff.objects.values_list("code", flat=True))
    assert Offer.objects.count() >= 12
    assert set(Offer.objects.values_list("kind", flat=True)) == set(Offer.Kind.values)
    assert set(Offer.objects.values_list("authority_level", flat=True)) == {1, 2, 3}


@pytest.mark.django_db
def test_seed_demo_stores_the_policy_defaults_as_version_1():
    seed_demo()
    policy = PolicyConfig.objects.get()
    assert policy.version == 1
    assert policy.values == json.loads((FIXTURES / "policy.json").read_text())


@pytest.mark.django_db
def test_an_existing_policy_is_left_alone():
    PolicyConfig.objects.create(version=7, values={"horizon_months": 24})
    assert policy_defaults_load(path=FIXTURES / "policy.json") is None
    assert list(PolicyConfig.objects.values_list("version", flat=True)) == [7]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "role", "level", "team", "language"),
    [
        ("agent", "agent", 1, "Team Utrecht", "nl"),
        ("agent2", "agent", 1, "Team Rotterdam", "en"),
        ("lead", "lead", 2, "Team Utrecht", "nl"),
        ("admin", "admin", 3, None, "nl"),
    ],
)
def test_seed_demo_creates_each_demo_user_with_role_authority_and_team(username, role, level, team, language):
    seed_demo()
    profile = AgentProfile.objects.select_related("team").get(user__username=username)
    assert (profile.role, profile.authority_level, profile.language) == (role, level, language)
    assert (profile.team.name if profile.team else None) == team


@pytest.mark.django_db
def test_only_the_admin_is_superuser_and_staff():
    seed_demo()
    privileged = get_user_model().objects.filter(is_superuser=True, is_staff=True)
    assert list(privileged.values_list("username", flat=True)) == ["admin"]
    assert set(Team.objects.values_list("name", flat=True)) == {"Team Utrecht", "Team Rotterdam"}


@pytest.mark.django_db
def test_running_seed_demo_twice_changes_nothing_the_second_time():
    seed_demo()
    before = database_state()
    output = seed_demo()
    assert database_state() == before
    assert "Tariffs: 0 created, 0 updated" in output
    assert "Offers: 0 created, 0 updated" in output


@pytest.mark.django_db
def test_the_generated_password_is_kept_private_and_reused(demo_settings):
    first = seed_demo()
    password_file = Path(demo_settings.DATA_DIR) / "demo_password"
    password = password_file.read_text().strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password in first
    assert password in seed_demo()
    assert get_user_model().objects.get(username="lead").check_password(password)


@pytest.mark.django_db
def test_without_demo_password_an_existing_users_password_is_kept():
    seed_demo()
    user = get_user_model().objects.get(username="agent")
    user.set_password("chosen by the agent")
    user.save()
    seed_demo()
    user.refresh_from_db()
    assert user.check_password("chosen by the agent")


@pytest.mark.django_db
def test_demo_password_from_settings_resets_the_demo_users(demo_settings):
    seed_demo()
    demo_settings.DEMO_PASSWORD = "a demo password for the team"
    output = seed_demo()
    assert "a demo password for the team" in output
    for user in get_user_model().objects.all():
        assert user.check_password("a demo password for the team")


@pytest.mark.django_db
def test_reloading_the_catalog_updates_an_offer_changed_since():
    catalog_load(path=FIXTURES / "catalog.json")
    Offer.objects.filter(code="korting-10-12m").update(discount_percent=12)
    summary = catalog_load(path=FIXTURES / "catalog.json")
    assert (summary.offers.updated, summary.offers.created) == (1, 0)
    assert Offer.objects.get(code="korting-10-12m").discount_percent == 10


@pytest.mark.django_db
def test_every_offer_fits_within_the_authority_of_its_level():
    catalog_load(path=FIXTURES / "catalog.json")
    authority = json.loads((FIXTURES / "policy.json").read_text())["authority"]
    for offer in Offer.objects.all():
        limits = authority[str(offer.authority_level)]
        assert offer.discount_percent <= limits["max_discount_percent"], offer.code
        assert offer.fixed_cost_cents <= limits["max_cost_cents"], offer.code


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("offer_changes", "tariff_changes", "message"),
    [
        ({"discount_percent": 150}, {}, "discount_percent"),
        ({"kind": "bribe"}, {}, "kind"),
        ({"authority_level": 4}, {}, "authority_level"),
        ({"eligibility": {"min_age": 65}}, {}, "unknown rule 'min_age'"),
        ({"eligibility": {"requires_products": ["fax"]}}, {}, "unknown values fax"),
        ({"eligibility": {"min_risk": 2}}, {}, "min_risk must be between 0.0 and 1.0, not 2"),
        ({"cost": 100}, {}, "cost: is not a field of Offer"),
        ({"duration_months": 0}, {}, "duration_months"),
        ({}, {"products": ["internet", "radio"]}, "unknown values radio"),
        ({}, {"monthly_fee_cents": -1}, "monthly_fee_cents"),
    ],
)
def test_a_bad_catalog_fixture_fails_loudly_and_stores_nothing(tmp_path, offer_changes, tariff_changes, message):
    path = write_catalog(tmp_path, offer_changes=offer_changes, tariff_changes=tariff_changes)
    with pytest.raises(FixtureError, match=message):
        catalog_load(path=path)
    assert not Tariff.objects.exists()
    assert not Offer.objects.exists()


@pytest.mark.django_db
def test_a_bad_offer_is_named_in_the_error(tmp_path):
    path = write_catalog(tmp_path, offer_changes={"discount_percent": 150})
    with pytest.raises(FixtureError, match=r"catalog.json, offer 'korting-10-12m'"):
        catalog_load(path=path)


@pytest.mark.django_db
def test_a_catalog_that_is_not_json_fails_loudly(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text('{"tariffs": [')
    with pytest.raises(FixtureError, match="not valid JSON"):
        catalog_load(path=path)


@pytest.mark.django_db
def test_a_bad_catalog_keeps_the_existing_catalog_as_it_was(tmp_path):
    OfferFactory(code="korting-10-12m", discount_percent=5)
    with pytest.raises(FixtureError):
        catalog_load(path=write_catalog(tmp_path, tariff_changes={"monthly_fee_cents": -1}))
    assert Offer.objects.get().discount_percent == 5


@pytest.mark.django_db
def test_seed_demo_reports_a_bad_fixture_as_a_command_error(tmp_path):
    for name in ("policy.json", "demo_users.json"):
        (tmp_path / name).write_text((FIXTURES / name).read_text())
    write_catalog(tmp_path, offer_changes={"kind": "bribe"})
    with pytest.raises(CommandError, match="kind"):
        seed_demo(fixtures=tmp_path)


def shipped_policy() -> dict:
    return json.loads((FIXTURES / "policy.json").read_text())


def written_policy(tmp_path, policy: dict) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    return path


def without_authority_level_3(policy: dict) -> dict:
    del policy["authority"]["3"]
    return policy


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (without_authority_level_3, "authority needs exactly the levels 1, 2, 3"),
        (
            lambda policy: {**policy, "exploration_method": "greedy"},
            "exploration_method must be one of thompson, uniform, not 'greedy'",
        ),
    ],
    ids=["without authority level 3", "unknown exploration method"],
)
def test_a_bad_policy_fixture_fails_loudly_and_stores_nothing(tmp_path, broken, message):
    path = written_policy(tmp_path, broken(shipped_policy()))
    with pytest.raises(FixtureError, match=message):
        policy_defaults_load(path=path)
    assert not PolicyConfig.objects.exists()


@pytest.mark.django_db
def test_a_policy_fixture_without_an_exploration_method_explores_by_thompson_sampling(tmp_path):
    policy = shipped_policy()
    del policy["exploration_method"]

    stored = policy_defaults_load(path=written_policy(tmp_path, policy))

    assert PolicySettings.from_values(stored.values).exploration_method == "thompson"


@pytest.mark.django_db
def test_in_production_it_loads_no_demo_users_and_needs_to_be_told_so(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="--no-users"):
        seed_demo()
    assert not get_user_model().objects.exists() and not Offer.objects.exists()

    out = seed_demo(no_users=True)

    assert Offer.objects.exists() and Tariff.objects.exists() and PolicyConfig.objects.exists()
    assert not get_user_model().objects.exists() and not Team.objects.exists()
    assert "Password" not in out
