from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings as settings_module
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ml.campaign import CampaignSetup, campaign_run
from ml.policy import MIN_EXPLORATION_SHARE, PolicyError
from ml.simulate import TariffSpec, offer_effects_table, simulate_base
from retention.management import arguments
from retention.management.interrupts import partial_beside, stopped_in_one_line
from retention.selectors.catalog import (
    offer_spec,
    offers_active,
    policy_current,
    tariff_option,
    tariff_spec,
    tariffs_active,
)

COLUMNS = (
    ("policy", "policy", "{}"),
    ("customers_kept", "kept", "{:,.1f}"),
    ("offers_made", "offers", "{:,}"),
    ("offer_cost_eur", "offer cost €", "{:,.0f}"),
    ("net_retained_value_eur", "net retained €", "{:,.0f}"),
    ("incremental_value_eur", "vs no offers €", "{:+,.0f}"),
    ("share_of_oracle", "of oracle", "{:.0%}"),
    ("guardrail_violations", "violations", "{}"),
)


class Command(BaseCommand):
    help = (
        "Compare ways of making retention offers on a synthetic base that answers from its hidden truth: "
        "no offers, a blanket discount, whoever pushes hardest, a random offer, this policy cold and after "
        "learning from logged outcomes, and the oracle; for reference also each offer kind's true gain fitted on "
        "the CRM's features, and every offer's true effect known with the chance to leave as the churn model "
        "sees it. Uses the stored catalog and policy; writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers", type=arguments.positive_int, default=5000, help="Customers every policy is scored on."
        )
        parser.add_argument(
            "--rounds", type=arguments.positive_int, default=5, help="Rounds of recommend, outcome, retrain."
        )
        parser.add_argument(
            "--learning-outcomes",
            type=arguments.positive_int,
            default=5000,
            help="Logged outcomes the policy learns from, spread over the rounds (other customers than those scored).",
        )
        parser.add_argument(
            "--learning-exploration",
            type=float,
            default=None,
            help="Exploration share while the outcomes are logged (default: the policy's own).",
        )
        parser.add_argument("--agent-level", type=int, default=3, choices=(1, 2, 3))
        parser.add_argument("--seed", type=arguments.seed, default=0)
        parser.add_argument(
            "--offer-effects",
            type=Path,
            help=(
                "JSON file giving, per persona, the share of the leave chance each offer kind removes "
                '(e.g. {"loyal": {"gift": 0.4}}); what it leaves out keeps the default. The policy is '
                "told nothing of it: it tries the policy on customers who answer offers otherwise than its priors."
            ),
        )
        parser.add_argument("--json", type=Path, help="Also write the report as JSON to this file ('-' for stdout).")

    def handle(
        self,
        *args,
        customers,
        rounds,
        learning_outcomes,
        learning_exploration,
        agent_level,
        seed,
        offer_effects,
        **options,
    ):
        if customers < 100 or learning_outcomes < 500:
            raise CommandError("need at least 100 customers and 500 learning outcomes to compare policies")
        if rounds < 1 or rounds > learning_outcomes // 100:
            raise CommandError("rounds must be between 1 and one per 100 learning outcomes")
        if learning_exploration is not None and not 0 <= learning_exploration <= 1:
            raise CommandError("--learning-exploration must be between 0 and 1")
        if learning_exploration is not None and 0 < learning_exploration < MIN_EXPLORATION_SHARE:
            # As the policy refuses such an exploration share: its rarest chances would come near the floor
            # off-policy estimates raise smaller ones to.
            raise CommandError(f"--learning-exploration must be 0 or at least {MIN_EXPLORATION_SHARE}")
        _check_writable(options["json"])
        effects = _offer_effects(offer_effects)
        setup = self._setup(agent_level, seed, learning_exploration)
        today = timezone.localdate()
        base = simulate_base(
            n=customers + learning_outcomes, seed=seed, today=today, tariffs=self._tariff_specs(), offer_effects=effects
        )
        with stopped_in_one_line("nothing is stored by a campaign, and no report was written"):
            report = campaign_run(
                evaluation=base[:customers],
                learning=base[customers:],
                setup=setup,
                rounds=rounds,
                today=today,
                progress=lambda message: self.stderr.write(message),
            )
        data = {**report.as_json(), "offer_effects": effects or "default"}
        if options["json"] is not None and str(options["json"]) == "-":
            self.stdout.write(json.dumps(data, indent=2))
            return
        self._table(data)
        self.stdout.write(_effects_line(effects, offer_effects))
        if options["json"] is not None:
            _write_whole(options["json"], json.dumps(data, indent=2))
            self.stdout.write(f"report written to {options['json']}")

    def _setup(self, agent_level: int, seed: int, learning_exploration: float | None) -> CampaignSetup:
        offers = tuple(offer_spec(offer) for offer in offers_active())
        tariffs = tuple(tariff_option(tariff) for tariff in tariffs_active())
        if not offers or not tariffs:
            raise CommandError("the catalog is empty: run `manage.py seed_demo` first")
        try:
            _, settings = policy_current()
        except PolicyError as error:
            raise CommandError(f"the stored policy cannot be used: {error}") from error
        return CampaignSetup(
            offers=offers,
            tariffs=tariffs,
            settings=settings,
            agent_level=agent_level,
            seed=seed,
            learning_exploration=learning_exploration,
            auc_tolerance=settings_module.RETRAIN_AUC_TOLERANCE,
            max_ece=settings_module.RETRAIN_MAX_ECE,
        )

    def _tariff_specs(self) -> dict[str, TariffSpec]:
        return {tariff.code: tariff_spec(tariff) for tariff in tariffs_active()}

    def _table(self, data: dict) -> None:
        rows = [[_cell(policy.get(key), fmt) for key, _, fmt in COLUMNS] for policy in data["policies"]]
        headers = [title for _, title, _ in COLUMNS]
        widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
        line = "  ".join
        self.stdout.write(
            line(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
        )
        for row in rows:
            self.stdout.write(
                line(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
            )
        self.stdout.write("")
        self.stdout.write("learning rounds (this policy on the same customers after each round):")
        for entry in data["learning_rounds"]:
            share = "" if entry["share_of_oracle"] is None else f" ({entry['share_of_oracle']:.0%} of the oracle)"
            self.stdout.write(
                f"  round {entry['round']}: {entry['logged_outcomes']:,} outcomes, "
                f"net retained €{entry['net_retained_value_eur']:,.0f}{share}"
            )
            self.stdout.write(f"    logged so far: {_counts(entry['logged_by_kind'])}")
            self.stdout.write(f"    {'promoted' if entry['promoted'] else 'not promoted'}: {entry['reason']}")
        self.stdout.write(f"{data['logged_outcomes']:,} logged outcomes; {data['seconds']:.0f} s")


def _check_writable(path: Path | None) -> None:
    """The report's file is checked before the minutes of simulation, not after them."""
    if path is None or str(path) == "-":
        return
    if problem := arguments.output_file_problem(path):
        raise CommandError(f"--json: {problem}")


def _offer_effects(path: Path | None) -> dict:
    """The persona-by-kind effects a file names, checked as the simulator checks them; {} without a file."""
    if path is None:
        return {}
    try:
        effects = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror or error}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CommandError(f"{path} is not JSON: {error}") from error
    try:
        offer_effects_table(effects)
    except ValueError as error:
        raise CommandError(f"{path}: {error}") from error
    return effects


def _effects_line(effects: dict, path: Path | None) -> str:
    """The offer effects the base answered with, on one line (the JSON report holds them as given)."""
    named = {persona: kinds for persona, kinds in effects.items() if kinds}
    if not named:
        return "offer effects: the simulator's defaults"
    given = "; ".join(
        f"{persona}: " + ", ".join(f"{kind} {share:g}" for kind, share in kinds.items())
        for persona, kinds in named.items()
    )
    return f"offer effects from {path}: {given}; the rest as the simulator's defaults"


def _counts(by_kind: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count:,}" for kind, count in by_kind.items())


def _cell(value, fmt: str) -> str:
    if value is None:
        return "-"
    return fmt.format(value)


def _write_whole(path: Path, text: str) -> None:
    """The report in --json's place once all of it is written: a full disk leaves what was there, not an empty
    file, and says so instead of a traceback after the whole run."""
    partial = partial_beside(path)
    try:
        partial.write_text(text)
        partial.replace(path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise CommandError(f"cannot write --json {path}: {error.strerror or error}") from None
