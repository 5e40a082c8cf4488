"""simulate_campaign: refuses what it cannot compare, and reports every policy on the stored catalog."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ml.campaign import KNOWN_EFFECTS, STATIC_POLICIES, TRUTH_FITTED
from ml.management.commands.simulate_campaign import _effects_line
from retention.models import PolicyConfig

POLICIES = [*STATIC_POLICIES, "this_policy_cold", "this_policy_learned", TRUTH_FITTED, KNOWN_EFFECTS, "oracle"]
SMALL = {"customers": 100, "learning_outcomes": 500, "rounds": 1}


@pytest.fixture
def seeded(db, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.DEMO_PASSWORD = ""
    call_command("seed_demo", stdout=StringIO())


def simulate(*args, **options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("simulate_campaign", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"customers": 99}, "at least 100 customers and 500 learning outcomes"),
        ({"learning_outcomes": 499}, "at least 100 customers and 500 learning outcomes"),
        ({"rounds": 0}, "rounds must be between 1 and one per 100 learning outcomes"),
        ({"learning_outcomes": 500, "rounds": 6}, "rounds must be between 1 and one per 100 learning outcomes"),
        ({"learning_exploration": 1.5}, "--learning-exploration must be between 0 and 1"),
        ({"learning_exploration": -0.01}, "--learning-exploration must be between 0 and 1"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(options, message):
    with pytest.raises(CommandError, match=message):
        simulate(**{**SMALL, **options})


def test_a_report_file_that_cannot_be_written_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(CommandError, match="is a directory"):
        simulate(**SMALL, json=tmp_path)
    with pytest.raises(CommandError, match="does not exist"):
        simulate(**SMALL, json=tmp_path / "missing" / "report.json")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder no file can be made in")
def test_a_folder_that_refuses_files_is_found_before_anything_runs():
    with pytest.raises(CommandError, match=r"--json: cannot write /proc/report\.json"):
        simulate(**SMALL, json=Path("/proc/report.json"))


def test_a_learning_exploration_the_policy_would_refuse_is_refused():
    with pytest.raises(CommandError, match=r"--learning-exploration must be 0 or at least 0\.001"):
        simulate(**{**SMALL, "learning_exploration": 0.00001})


def test_an_agent_level_outside_one_to_three_is_refused():
    with pytest.raises(CommandError, match="--agent-level"):
        simulate("--agent-level", "4")


@pytest.mark.django_db
def test_an_empty_catalog_is_refused_with_the_command_that_fills_it():
    with pytest.raises(CommandError, match=r"the catalog is empty: run `manage.py seed_demo` first"):
        simulate(**SMALL)


def test_a_stored_policy_that_cannot_be_applied_is_refused(seeded):
    PolicyConfig.objects.create(version=2, values={"margin_rate": 2})

    with pytest.raises(CommandError, match="the stored policy cannot be used: margin_rate"):
        simulate(**SMALL)


def test_on_the_seeded_catalog_the_report_lists_all_seven_policies(seeded, tmp_path):
    path = tmp_path / "campaign.json"

    out, err = simulate(**SMALL, json=path)

    report = json.loads(path.read_text())
    assert [policy["policy"] for policy in report["policies"]] == POLICIES
    assert {policy["customers"] for policy in report["policies"]} == {100}
    assert [entry["round"] for entry in report["learning_rounds"]] == [1]
    assert report["logged_outcomes"] == 500
    assert {policy["guardrail_violations"] for policy in report["policies"]} == {0}
    assert f"report written to {path}" in out
    assert all(name in out for name in POLICIES), "the table names every policy"
    assert "round 1/1" in err
    logged = report["learning_rounds"][0]["logged_by_kind"]
    assert sum(logged.values()) == 500
    assert "logged so far: " + ", ".join(f"{kind} {count:,}" for kind, count in logged.items()) in out
    assert "offer effects: the simulator's defaults\n" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ('{"loyal": {"cashback": 0.2}}', "unknown offer kind 'cashback' for 'loyal'"),
        ('{"loyal": {"gift": 2}}', "the share loyal.gift must be a number from 0 to 1"),
    ],
)
def test_an_offer_effects_file_that_cannot_be_used_is_refused_before_anything_runs(tmp_path, content, message):
    path = tmp_path / "effects.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(CommandError, match=message):
        simulate(**SMALL, offer_effects=path)


def test_json_on_stdout_is_the_report_alone_and_a_base_answering_offers_otherwise_is_reported_with_it(seeded, tmp_path):
    path = tmp_path / "effects.json"
    effects = {persona: {"gift": 0.9} for persona in ("price_sensitive", "service_sensitive", "loyal")}
    path.write_text(json.dumps(effects))

    default = json.loads(simulate(**SMALL, json="-")[0])  # stdout holds the report alone, or it would not parse
    other = json.loads(simulate(**SMALL, json="-", offer_effects=path)[0])

    assert [policy["policy"] for policy in default["policies"]] == POLICIES
    assert (default["offer_effects"], other["offer_effects"]) == ("default", effects)
    assert _policy(other, "oracle")["incremental_value_eur"] > _policy(default, "oracle")["incremental_value_eur"]
    assert _policy(other, "no_offers") == _policy(default, "no_offers"), "the same customers, the same baseline"


def _policy(report: dict, name: str) -> dict:
    return next(policy for policy in report["policies"] if policy["policy"] == name)


def test_the_text_report_names_the_offer_effects_of_the_file_on_one_line(tmp_path):
    path = tmp_path / "effects.json"
    effects = {"loyal": {"gift": 0.5}, "deal_seeker": {"discount": 0.7, "gift": 0.25}, "price_sensitive": {}}

    line = _effects_line(effects, path)

    assert line == (
        f"offer effects from {path}: loyal: gift 0.5; deal_seeker: discount 0.7, gift 0.25; "
        "the rest as the simulator's defaults"
    )
    assert _effects_line({"loyal": {}}, path) == _effects_line({}, None) == "offer effects: the simulator's defaults"
