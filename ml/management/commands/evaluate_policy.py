from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from ml.evaluation import (
    BEYOND_REACH_UNLOGGED,
    CANDIDATES,
    DEFAULT_CONFIDENCE,
    MIN_EFFECTIVE_DECISIONS,
    PROPENSITY_FLOOR,
    REWARD_MODEL_FOLDS,
    Candidate,
    Estimate,
    EvaluationError,
    PolicyEvaluation,
    candidates_evaluate,
    reranked_policy,
)
from ml.policy import PolicyError
from retention.management import arguments
from retention.selectors.budget import period_bounds
from retention.selectors.outcome_log import OutcomeLogError, logged_outcomes, policy_settings_by_version

VERSION_PREFIX = "policy-version:"
# The version number of the built-in policy settings, used before any version is stored.
BUILT_IN_VERSION = 0
BUILT_IN_POLICY = f"{VERSION_PREFIX}{BUILT_IN_VERSION}"
ESTIMATORS = ("ips", "snips", "dr")
REWARD_MODEL = (
    f"gradient-boosted regression of reward (and of staying) on the arm's cost, stored acceptance estimate, "
    f"kind and the decision's margin and risk, cross-fitted over {REWARD_MODEL_FOLDS} folds"
)

# Fewer resamples put the interval's tails on a handful of draws: it may not even hold the estimate.
MIN_RESAMPLES = 100
# 2,000 resamples of a 700-decision log take about 5 s: more than this would run for minutes and tell nothing new.
MAX_RESAMPLES = 20_000


class Command(BaseCommand):
    help = (
        "Estimate from the labelled decision log what candidate recommendation policies would have earned per "
        "decision (IPS, self-normalised IPS and doubly robust, with confidence intervals)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--policy",
            action="append",
            dest="policies",
            metavar="NAME",
            help=f"{', '.join(CANDIDATES)} or {VERSION_PREFIX}N ({VERSION_PREFIX}{BUILT_IN_VERSION}: the built-in "
            "defaults); repeatable; default: all, with every stored policy version and the built-in defaults",
        )
        parser.add_argument("--since", help="first decision day, YYYY-MM-DD")
        parser.add_argument("--until", help="last decision day, YYYY-MM-DD (included)")
        parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE)
        parser.add_argument(
            "--seed", type=arguments.seed, default=0, help="cross-fitting folds and bootstrap resamples"
        )
        parser.add_argument(
            "--bootstrap", type=int, default=0, metavar="N", help="N bootstrap resamples (default: normal intervals)"
        )
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, policies, since, until, confidence, seed, bootstrap, as_json, **options):
        if not 0 < confidence < 1:
            raise CommandError(f"--confidence must be between 0 and 1, not {confidence}")
        if bootstrap < 0 or 0 < bootstrap < MIN_RESAMPLES or bootstrap > MAX_RESAMPLES:
            raise CommandError(
                f"--bootstrap takes {MIN_RESAMPLES:,} to {MAX_RESAMPLES:,} resamples (or 0 for normal intervals)"
            )
        candidates = _candidates(policies or _every_policy())
        start, end = _window(since, until)
        try:
            outcomes = logged_outcomes(since=start, until=end)
            if outcomes.empty:
                raise CommandError(f"no labelled decisions {_window_words(since, until)}")
            results = candidates_evaluate(outcomes, candidates, confidence=confidence, resamples=bootstrap, seed=seed)
        except (OutcomeLogError, EvaluationError, PolicyError) as error:
            raise CommandError(str(error)) from error
        summary = {
            "decisions": len(outcomes),
            "since": since,
            "until": until,
            "confidence": confidence,
            "interval": f"bootstrap ({bootstrap} resamples)" if bootstrap else "normal approximation",
            "seed": seed,
            "reward_model": REWARD_MODEL,
            "propensity_floor": PROPENSITY_FLOOR,
            "observed": {
                "value_cents": float(outcomes["reward_cents"].mean()),
                "save_rate": float(outcomes["stayed"].mean()),
            },
        }
        if as_json:
            report = {**summary, "policies": [result.as_json() for result in results]}
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(_table(summary, results, since, until))


def _every_policy() -> list[str]:
    """The named candidates and a re-ranking with each policy version's settings (0: the built-in defaults)."""
    return [*CANDIDATES, *(f"{VERSION_PREFIX}{version}" for version in sorted(_stored_versions()))]


def _candidates(names: list[str]) -> dict[str, Candidate]:
    versions = None
    chosen: dict[str, Candidate] = {}
    for name in names:
        if name in CANDIDATES:
            chosen[name] = CANDIDATES[name]
        elif name.startswith(VERSION_PREFIX):
            versions = versions if versions is not None else _stored_versions()
            chosen[name] = reranked_policy(_version_settings(name, versions))
        else:
            raise CommandError(f"unknown policy {name!r}: choose from {', '.join(CANDIDATES)} or {VERSION_PREFIX}N")
    return chosen


def _stored_versions() -> dict:
    try:
        return policy_settings_by_version()
    except PolicyError as error:
        raise CommandError(f"a stored policy version cannot be read: {error}") from error


def _version_settings(name: str, versions: dict):
    number = name.removeprefix(VERSION_PREFIX)
    if not number.isdecimal():
        raise CommandError(f"{name!r}: a policy version is a whole number, e.g. {VERSION_PREFIX}2")
    if int(number) not in versions:
        raise CommandError(f"unknown policy version {number}: the versions are {_versions_words(versions)}")
    return versions[int(number)]


def _versions_words(versions: dict) -> str:
    """The versions one may name: 0 is no stored version but the built-in defaults used before any was stored."""
    stored = [str(version) for version in sorted(versions) if version != BUILT_IN_VERSION]
    built_in = f"{BUILT_IN_VERSION} (the built-in defaults)"
    return f"{built_in} and the stored {', '.join(stored)}" if stored else f"{built_in}; none is stored"


def _window(since: str | None, until: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Local midnights: the start of `since` and of the day after `until`, so both days are included."""
    first, last = _day("--since", since), _day("--until", until)
    if first and last and last < first:
        raise CommandError(f"--until {last} is before --since {first}")
    return period_bounds(first, last)


def _day(option: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"{option} must be a date as YYYY-MM-DD, not {value!r}") from error


def _window_words(since: str | None, until: str | None) -> str:
    if since and until:
        return f"from {since} to {until}"
    if since:
        return f"since {since}"
    if until:
        return f"until {until}"
    return "in the log"


# Below this effective sample size the normal intervals were measured to hold the truth well under their
# nominal share of the time (weights from rare explored offers make the spread itself uncertain).
THIN_LOG_ESS = 100


def _table(summary: dict, results: list[PolicyEvaluation], since: str | None, until: str | None) -> str:
    observed = summary["observed"]
    percent = round(summary["confidence"] * 100, 1)
    lines = [
        f"{summary['decisions']} labelled decisions {_window_words(since, until)}; "
        f"observed {_euros(observed['value_cents'])} per decision, save rate {observed['save_rate']:.1%}.",
        f"{percent:g}% intervals by {summary['interval']}; DR reward model: {summary['reward_model']} "
        f"(seed {summary['seed']}).",
        "",
        f"{'policy':<18} {'support':>7} {'ESS':>8}  "
        + "  ".join(f"{name.upper() + ' €/decision':<26}" for name in ESTIMATORS)
        + "  save rate (DR)",
    ]
    lines += [_row(result) for result in results]
    if any(result.policy == BUILT_IN_POLICY for result in results):
        lines.append(f"{BUILT_IN_POLICY} is the built-in defaults, used before any policy version was stored.")
    for result in results:
        if clipped := result.value["ips"].clipped:
            lines.append(
                f"{result.policy}: {clipped} of the decisions it weighs log a chance below {PROPENSITY_FLOOR} for "
                "the action they took, which the policy never gives: the log is inconsistent there. They were "
                "raised to that floor, so IPS, SNIPS and DR's correction, which all divide by it, are not to be "
                "trusted; `propensity` in the decision log (API and CSV) shows which decisions they are."
            )
    if beyond := [result.policy for result in results if result.beyond_the_log]:
        one = len(beyond) == 1
        lines.append(
            f"{', '.join(beyond)} (†): too far from what the log did to be judged on it. With "
            f"{BEYOND_REACH_UNLOGGED:.0%} or more of its recommendations on actions the log never took, IPS and SNIPS "
            "are biased and DR rests on its reward model's guess for those, however many decisions weigh the rest: "
            "on logs whose truth was known they put a random offer €25 or more a decision away from its true value, "
            f"outside their intervals. Do not rank {'it' if one else 'them'} against the logged policy on this log; "
            "a larger exploration_share, or a trial, tells more."
        )
    if thin := [
        result.policy
        for result in results
        if result.value["ips"].effective_sample_size < THIN_LOG_ESS and not result.beyond_the_log
    ]:
        lines.append(
            f"{', '.join(thin)}: fewer than {THIN_LOG_ESS} effective decisions, where intervals run narrow "
            "(simulated at 5% exploration and an ESS of 48, nominal 95% normal intervals held the true value 77% "
            "of the time for IPS, 88% for SNIPS and 91% for DR): lean on DR's."
        )
    for result in results:
        if result.unlogged_share >= UNLOGGED_SHARE_NOTED:
            lines.append(
                f"{result.policy}: {result.unlogged_share:.1%} of its recommendations take an action (an offer, or "
                "no offer) the log never took for those customers; IPS counts them as earning nothing and SNIPS "
                "leaves them out, so only DR's reward model speaks for them."
            )
    if any(_without_interval(result) for result in results):
        lines.append(
            f"[ESS<{MIN_EFFECTIVE_DECISIONS}]: the weighted log is worth fewer than {MIN_EFFECTIVE_DECISIONS} "
            "decisions, too few for an interval; for DR the value then comes mostly from its reward model."
        )
    return "\n".join(lines)


# Below this share of its recommendations on arms never logged, a candidate's IPS and SNIPS are as good as whole.
UNLOGGED_SHARE_NOTED = 0.001


def _without_interval(result: PolicyEvaluation) -> bool:
    estimates = [*result.value.values(), *result.save_rate.values()]
    return any(estimate.without_interval for estimate in estimates)


def _row(result: PolicyEvaluation) -> str:
    values = "  ".join(f"{_with_interval(result.value[name], _euros):<26}" for name in ESTIMATORS)
    save_rate = _with_interval(result.save_rate["dr"], lambda share: f"{share:.1%}")
    ess = result.value["ips"].effective_sample_size
    name = f"{result.policy} †" if result.beyond_the_log else result.policy
    return f"{name:<18} {result.support:>7} {ess:>8.1f}  {values}  {save_rate}"


def _with_interval(estimate: Estimate, shown) -> str:
    if estimate.value != estimate.value:  # nan: no logged decision supports the policy
        return "no support"
    if estimate.without_interval:
        return f"{shown(estimate.value)} [ESS<{MIN_EFFECTIVE_DECISIONS}]"
    return f"{shown(estimate.value)} [{shown(estimate.low)}, {shown(estimate.high)}]"


def _euros(cents: float) -> str:
    sign = "−" if cents < 0 else ""
    return f"{sign}€{abs(cents) / 100:,.2f}"
