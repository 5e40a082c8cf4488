"""A retention campaign on a synthetic base: how much each way of making offers keeps.

Every policy meets the same customers at the same renewal moment with the same
guardrails (the offers each customer may get, the per-customer budget, the agent's
authority and the renewal fee after price parity). The hidden truth answers: a
customer with leave chance p stays with an offer of kind k with chance
1 − p × (1 − effect[k]). Values are expectations over that truth, so two policies
are compared without sampling noise:

    net retained value = Σ margin × P(stay) − Σ offer cost
    incremental value  = net retained value − that of making no offers

The cost of an offer counts as committed once it is made, as in the policy's own
arithmetic. The learning rounds draw real outcomes (stay or leave) from the truth
for the decisions they log, as a CRM would report them, and the offer-response model
learns only from those logs; it never sees the truth.

Plain Python on the simulator's records; the caller passes the catalog and settings.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import xgboost as xgb

from ml.churn import ChurnModel, churn_model_train
from ml.features import build_features
from ml.policy import (
    NO_OFFER,
    CustomerContext,
    OfferSpec,
    PolicySettings,
    StayEstimates,
    TariffOption,
    best_tariff,
    customer_budget_left_cents,
    ineligibility,
    rank_offers,
    rankable,
    renewal_fee_cents,
    within_authority,
    worse_than_best_tariff,
)
from ml.response import (
    NO_OFFER_KIND,
    OFFER_KIND_COLUMN,
    ResponseModel,
    response_model_fit,
    stay_estimates,
    treatment_columns,
)
from ml.simulate import SimulatedCustomer
from ml.training import challenger_comparison, promotion_verdict
from ml.verdicts import render
from retention.records import records_to_frames

# The rounds' decisions are dated on a clock of their own, a month apart, so the holdout of each
# challenger is the latest round, as the registry's time-based holdout would take it.
ROUNDS_START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
ROUND_DAYS = 30
STATIC_POLICIES = ("no_offers", "blanket_discount", "pushiest_gets_most", "random_offer")
# References beside the oracle. Fitted: each offer kind's true gain (leave chance × share removed), fitted on
# what the CRM sends from the learning customers' hidden truth. Known: every offer's true effect known, with the
# chance to leave as the churn model sees it.
TRUTH_FITTED = "truth_fitted_on_features"
KNOWN_EFFECTS = "known_effects_estimated_risk"
# The regression behind TRUTH_FITTED: boosted trees, enough to follow a gain that depends on the features in any
# shape, fitted on noise-free targets.
TRUTH_FIT_PARAMS = {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.05, "subsample": 0.8, "nthread": 2}
TRUTH_FIT_ROUNDS = 300
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CampaignCustomer:
    """A customer as the policies see them, with the truth only the scorer reads."""

    key: str
    context: CustomerContext
    features: dict
    fee_cents: int  # the renewal fee after price parity
    margin_cents: float
    eligible: tuple[OfferSpec, ...]  # every guardrail but authority and exploration
    leave_probability: float
    offer_effects: dict[str, float]
    pushiness: float


@dataclass
class PolicyResult:
    name: str
    customers: int
    kept: float
    offers_made: int
    offer_cost_cents: float
    net_value_cents: float
    incremental_value_cents: float = 0.0
    share_of_oracle: float | None = None
    guardrail_violations: int = 0

    def as_json(self) -> dict:
        return {
            "policy": self.name,
            "customers": self.customers,
            "customers_kept": round(self.kept, 1),
            "offers_made": self.offers_made,
            "offer_cost_eur": round(self.offer_cost_cents / 100, 2),
            "net_retained_value_eur": round(self.net_value_cents / 100, 2),
            "incremental_value_eur": round(self.incremental_value_cents / 100, 2),
            "share_of_oracle": None if self.share_of_oracle is None else round(self.share_of_oracle, 4),
            "guardrail_violations": self.guardrail_violations,
        }


@dataclass
class CampaignReport:
    results: list[PolicyResult]
    rounds: list[dict] = field(default_factory=list)
    logged_outcomes: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict:
        return {
            "policies": [result.as_json() for result in self.results],
            "learning_rounds": self.rounds,
            "logged_outcomes": self.logged_outcomes,
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True)
class CampaignSetup:
    offers: tuple[OfferSpec, ...]
    tariffs: tuple[TariffOption, ...]
    settings: PolicySettings
    agent_level: int = 3
    seed: int = 0
    # The exploration share while the learning customers are logged (the policy's own when None).
    learning_exploration: float | None = None
    # The registry's promotion rule: not worse than the champion's ROC AUC beyond this, and calibrated.
    auc_tolerance: float = 0.005
    max_ece: float = 0.05


def campaign_run(
    *,
    evaluation: Sequence[SimulatedCustomer],
    learning: Sequence[SimulatedCustomer],
    setup: CampaignSetup,
    rounds: int,
    today: dt.date,
    progress: Progress = lambda message: None,
) -> CampaignReport:
    """Train a churn model on the learning customers' past, learn offer responses over `rounds`, compare policies.

    The evaluation customers are never logged or learned from.
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    started = time.perf_counter()
    progress("training the churn model on the learning customers' labelled renewals")
    fees = {tariff.code: tariff.monthly_fee_cents / 100 for tariff in setup.tariffs}
    churn = _churn_model(learning, fees, today, setup.seed)
    progress("building the customers' features")
    evaluation_customers = campaign_customers(evaluation, churn, fees, setup, today, prefix="eval")
    learning_customers = campaign_customers(learning, churn, fees, setup, today, prefix="learn")
    results = [
        _score(name, evaluation_customers, static_policy_choices(name, evaluation_customers, setup), setup)
        for name in STATIC_POLICIES
    ]
    cold = policy_choices(evaluation_customers, setup, response=None)
    results.append(_score("this_policy_cold", evaluation_customers, cold, setup))
    learned_rounds, response = _learning_rounds(learning_customers, evaluation_customers, setup, rounds, progress)
    learned = policy_choices(evaluation_customers, setup, response=response)
    results.append(_score("this_policy_learned", evaluation_customers, learned, setup))
    progress("fitting the learning customers' hidden gains from offers on their features, for reference")
    fitted = truth_fitted_choices(evaluation_customers, learning_customers, setup)
    results.append(_score(TRUTH_FITTED, evaluation_customers, fitted, setup))
    known = known_effects_choices(evaluation_customers, setup)
    results.append(_score(KNOWN_EFFECTS, evaluation_customers, known, setup))
    results.append(_score("oracle", evaluation_customers, oracle_choices(evaluation_customers, setup), setup))
    _relative_to_no_offers(results)
    for entry in learned_rounds:
        entry["share_of_oracle"] = _share(entry.pop("_incremental"), results)
    return CampaignReport(
        results=results,
        rounds=learned_rounds,
        logged_outcomes=len(learning_customers),
        seconds=time.perf_counter() - started,
    )


# --- the customers ----------------------------------------------------------------------------


def _renewal_moment(customer: SimulatedCustomer, today: dt.date) -> dt.datetime:
    """The start of the renewal day (the new contract, if any, has not begun), or today for one still ahead."""
    moment = min(customer.renewal_date, today)
    return dt.datetime.combine(moment, dt.time.min, tzinfo=dt.UTC)


def _features(customers: Sequence[SimulatedCustomer], fees: dict[str, float], today: dt.date) -> pd.DataFrame:
    rows, contracts, events = records_to_frames([c.record for c in customers], as_of=dt.datetime.now(dt.UTC))
    rows["as_of"] = [_renewal_moment(customer, today) for customer in customers]
    return build_features(rows, contracts, events, fees)


def _churn_model(
    learning: Sequence[SimulatedCustomer], fees: dict[str, float], today: dt.date, seed: int
) -> ChurnModel:
    labelled = [customer for customer in learning if customer.labelled]
    rows, contracts, events = records_to_frames([c.record for c in labelled], as_of=dt.datetime.now(dt.UTC))
    rows["as_of"] = [_renewal_moment(customer, today) for customer in labelled]
    features = build_features(rows, contracts, events, fees)
    labels = np.array([customer.record.renewals[-1].result == "churned" for customer in labelled], dtype=int)
    return churn_model_train(features, labels, seed=seed)


def campaign_customers(
    customers: Sequence[SimulatedCustomer],
    churn: ChurnModel,
    fees: dict[str, float],
    setup: CampaignSetup,
    today: dt.date,
    *,
    prefix: str,
) -> list[CampaignCustomer]:
    features = _features(customers, fees, today)
    probabilities = churn.predict_proba(features)
    records = features.to_dict("records")
    out = []
    for number, (customer, row, probability) in enumerate(zip(customers, records, probabilities, strict=True)):
        context = _context(customer, row, float(probability), setup.tariffs)
        fee = renewal_fee_cents(context, setup.settings)
        out.append(
            CampaignCustomer(
                key=f"{prefix}-{setup.seed}-{number}",
                context=context,
                features=row,
                fee_cents=fee,
                margin_cents=fee * setup.settings.margin_rate * setup.settings.horizon_months,
                eligible=tuple(offer for offer in setup.offers if rankable(offer, context, fee, setup.settings)),
                leave_probability=customer.leave_probability,
                offer_effects=customer.offer_effects,
                pushiness=customer.pushiness,
            )
        )
    return out


def _context(
    customer: SimulatedCustomer, row: dict, probability: float, tariffs: Sequence[TariffOption]
) -> CustomerContext:
    products = frozenset(customer.record.products or ())
    segment = customer.record.segment or "consumer"
    best = best_tariff(products, list(tariffs), segment=segment)
    return CustomerContext.from_features(
        row,
        segment=segment,
        value_tier=customer.record.value_tier or "",
        products=products,
        churn_probability=probability,
        best_tariff_fee_cents=best.monthly_fee_cents if best else None,
    )


# --- the policies: each returns one offer code ("" for none) per customer ----------------------


def static_policy_choices(name: str, customers: Sequence[CampaignCustomer], setup: CampaignSetup) -> list[str]:
    rng = np.random.default_rng(setup.seed + 17)
    choices = []
    for customer in customers:
        offers = _within_authority(customer, setup)
        if name == "no_offers" or not offers:
            choices.append(NO_OFFER)
        elif name == "blanket_discount":
            choices.append(_blanket_discount(customer, offers, setup.settings))
        elif name == "pushiest_gets_most":
            choices.append(_pushiest_gets_most(customer, offers))
        elif name == "random_offer":
            choices.append(offers[int(rng.integers(len(offers)))].code)
        else:
            raise ValueError(f"unknown static policy {name!r}")
    return choices


def _within_authority(customer: CampaignCustomer, setup: CampaignSetup) -> list[OfferSpec]:
    return [
        offer
        for offer in customer.eligible
        if within_authority(offer, offer.cost_cents(customer.fee_cents), setup.agent_level, setup.settings)
    ]


def _blanket_discount(customer: CampaignCustomer, offers: list[OfferSpec], settings: PolicySettings) -> str:
    """Everyone the churn model puts at medium risk or above gets the cheapest discount they may have."""
    if settings.risk_band(customer.context.churn_probability) == "low":
        return NO_OFFER
    discounts = [offer for offer in offers if offer.kind == "discount"]
    if not discounts:
        return NO_OFFER
    return min(discounts, key=lambda offer: (offer.cost_cents(customer.fee_cents), offer.code)).code


def _pushiest_gets_most(customer: CampaignCustomer, offers: list[OfferSpec]) -> str:
    """The harder the customer pushes, the dearer the offer; the quiet third gets nothing."""
    if customer.pushiness < 1 / 3:
        return NO_OFFER
    by_cost = sorted(offers, key=lambda offer: (offer.cost_cents(customer.fee_cents), offer.code))
    place = min(len(by_cost) - 1, int((customer.pushiness - 1 / 3) * 1.5 * len(by_cost)))
    return by_cost[place].code


def policy_choices(
    customers: Sequence[CampaignCustomer], setup: CampaignSetup, *, response: _Response | None
) -> list[str]:
    """This service's recommendations, exploration and control group included, as deployed."""
    estimates = _estimates(customers, setup, response)
    return [
        rank_offers(
            customer=customer.context,
            offers=list(setup.offers),
            settings=setup.settings,
            agent_level=setup.agent_level,
            stay=stay,
            decision_key=customer.key,
            control_key=customer.key,
        ).recommended_code
        for customer, stay in zip(customers, estimates, strict=True)
    ]


def oracle_choices(customers: Sequence[CampaignCustomer], setup: CampaignSetup) -> list[str]:
    """What knowing each customer's hidden response would choose, within the same guardrails."""
    return [_best_offer(customer, setup, customer.leave_probability) for customer in customers]


def known_effects_choices(customers: Sequence[CampaignCustomer], setup: CampaignSetup) -> list[str]:
    """What knowing how much every offer removes of each customer's chance to leave would choose, with
    that chance judged by the churn model as this policy judges it.

    The most a policy that learns offer effects perfectly could keep: what separates it from the
    oracle is the churn model's view of who will leave, which no amount of offer outcomes changes.
    """
    return [_best_offer(customer, setup, customer.context.churn_probability) for customer in customers]


def truth_fitted_choices(
    customers: Sequence[CampaignCustomer], learning: Sequence[CampaignCustomer], setup: CampaignSetup
) -> list[str]:
    """What a policy that sees only the CRM's features could choose at best: for each offer kind, the chance
    to leave it takes away (leave chance × share removed) is fitted on the features and churn probability of
    the learning customers, from their hidden truth rather than from noisy outcomes, and each customer gets the
    offer whose fitted gain is worth most beyond its cost.

    Where the gain depends on what nobody observes, this stays below the oracle however well it is fitted;
    a policy learning from a few thousand stay-or-leave outcomes is not expected to do better.
    """
    inputs = _numeric_inputs([*learning, *customers])
    train, score = inputs[: len(learning)], inputs[len(learning) :]
    scored = xgb.DMatrix(score, nthread=TRUTH_FIT_PARAMS["nthread"])
    gains = {}
    for kind in sorted({offer.kind for offer in setup.offers}):
        target = [customer.leave_probability * customer.offer_effects.get(kind, 0.0) for customer in learning]
        data = xgb.DMatrix(train, label=np.array(target), nthread=TRUTH_FIT_PARAMS["nthread"])
        booster = xgb.train({**TRUTH_FIT_PARAMS, "seed": setup.seed}, data, num_boost_round=TRUTH_FIT_ROUNDS)
        gains[kind] = booster.predict(scored)
    return [
        _best_by_gain(customer, setup, {kind: float(gain[number]) for kind, gain in gains.items()})
        for number, customer in enumerate(customers)
    ]


def _numeric_inputs(customers: Sequence[CampaignCustomer]) -> np.ndarray:
    """The customers' numeric features and the churn model's probability, gaps as NaN."""
    frame = pd.DataFrame([customer.features for customer in customers]).select_dtypes("number")
    frame["churn_probability"] = [customer.context.churn_probability for customer in customers]
    return frame.to_numpy(dtype=float)


def _best_offer(customer: CampaignCustomer, setup: CampaignSetup, leave_probability: float) -> str:
    """The offer worth most beyond its cost at this chance to leave, under the hidden effects; none if none pays."""
    gains = {kind: leave_probability * effect for kind, effect in customer.offer_effects.items()}
    return _best_by_gain(customer, setup, gains)


def _best_by_gain(customer: CampaignCustomer, setup: CampaignSetup, gains: dict[str, float]) -> str:
    """The offer the agent may make whose kind's gain (the chance to leave it takes away) is worth most
    beyond its cost; none if none pays."""
    best, best_value = NO_OFFER, 0.0
    for offer in _within_authority(customer, setup):
        value = customer.margin_cents * gains.get(offer.kind, 0.0) - offer.cost_cents(customer.fee_cents)
        if value > best_value:
            best, best_value = offer.code, value
    return best


# --- learning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Response:
    model: ResponseModel
    evidence: dict[str, int]
    trained_until: str


def _estimates(
    customers: Sequence[CampaignCustomer], setup: CampaignSetup, response: _Response | None
) -> list[StayEstimates | None]:
    if response is None:
        return [None] * len(customers)
    return stay_estimates(
        model=response.model,
        evidence=response.evidence,
        customers=pd.DataFrame([customer.features for customer in customers]),
        contexts=[customer.context for customer in customers],
        fees_cents=[customer.fee_cents for customer in customers],
        offers=list(setup.offers),
        prior_strength=setup.settings.prior_strength,
    )


def _learning_rounds(
    learning: list[CampaignCustomer],
    evaluation: list[CampaignCustomer],
    setup: CampaignSetup,
    rounds: int,
    progress: Progress,
) -> tuple[list[dict], _Response | None]:
    """Each round the champion decides for a new batch, their outcomes join the log, and a challenger
    trained on the whole log replaces the champion only when the registry's rule would promote it."""
    rng = np.random.default_rng(setup.seed + 29)
    batches = np.array_split(np.arange(len(learning)), rounds)
    log: list[dict] = []
    champion = None
    summaries = []
    for number, batch in enumerate(batches, start=1):
        customers = [learning[i] for i in batch]
        choices = policy_choices(customers, _learning_setup(setup), response=champion)
        moment = ROUNDS_START + dt.timedelta(days=ROUND_DAYS * number)
        log.extend(_logged(c, code, setup, rng, moment) for c, code in zip(customers, choices, strict=True))
        progress(f"round {number}/{rounds}: training a challenger on {len(log)} logged outcomes")
        challenger, promoted, reason = _challenge(log, champion, setup)
        if promoted:
            champion = challenger
        learned = _score("learned", evaluation, policy_choices(evaluation, setup, response=champion), setup)
        summaries.append(
            {
                "round": number,
                "logged_outcomes": len(log),
                "logged_by_kind": logged_by_kind(log),
                "promoted": promoted,
                "reason": reason,
                "net_retained_value_eur": round(learned.net_value_cents / 100, 2),
                "_incremental": learned.net_value_cents,
            }
        )
    return summaries, champion


def logged_by_kind(log: Sequence[dict]) -> dict[str, int]:
    """How many of the logged decisions made each offer kind (and no offer), most logged first.

    What the policy can learn of an offer is bounded by how often the log holds it: one its prior
    prices far below no offer is hardly ever tried, and then stays at its prior.
    """
    counts = Counter(entry[OFFER_KIND_COLUMN] for entry in log)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _challenge(log: list[dict], champion: _Response | None, setup: CampaignSetup) -> tuple[_Response, bool, str]:
    frame = pd.DataFrame(log)
    labels = frame.pop("_left").to_numpy()
    times = frame.pop("_time")
    result = response_model_fit(frame, labels, times, seed=setup.seed)
    comparison = challenger_comparison(
        labels=labels,
        times=times,
        result=result,
        champion_scores=None if champion is None else _scorer(champion, frame),
        champion_trained_until=None if champion is None else champion.trained_until,
        seed=setup.seed,
    )
    promoted, verdict = promotion_verdict(comparison, auc_tolerance=setup.auc_tolerance, max_ece=setup.max_ece)
    challenger = _Response(
        model=result.model, evidence=result.metrics["evidence"], trained_until=pd.Timestamp(times.max()).isoformat()
    )
    return challenger, promoted, render(verdict)


def _scorer(champion: _Response, frame: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
    def scores(rows: np.ndarray) -> np.ndarray:
        return champion.model.predict_proba(frame.iloc[rows].reset_index(drop=True))

    return scores


def _learning_setup(setup: CampaignSetup) -> CampaignSetup:
    if setup.learning_exploration is None:
        return setup
    settings = replace(setup.settings, exploration_share=setup.learning_exploration)
    return replace(setup, settings=settings)


def _logged(
    customer: CampaignCustomer, code: str, setup: CampaignSetup, rng: np.random.Generator, moment: dt.datetime
) -> dict:
    """One decision as the CRM reports it back: what was offered and whether the customer stayed."""
    offer = _offer(setup, code)
    kind = offer.kind if offer else NO_OFFER_KIND
    cost = offer.cost_cents(customer.fee_cents) if offer else 0
    stays = rng.random() < _stay_chance(customer, offer)
    return {
        **customer.features,
        "churn_probability": customer.context.churn_probability,
        **treatment_columns(kind, cost, customer.fee_cents),
        "_left": int(not stays),
        "_time": moment,
    }


# --- scoring against the truth ----------------------------------------------------------------


def _offer(setup: CampaignSetup, code: str) -> OfferSpec | None:
    if not code:
        return None
    return next(offer for offer in setup.offers if offer.code == code)


def _stay_chance(customer: CampaignCustomer, offer: OfferSpec | None) -> float:
    effect = customer.offer_effects.get(offer.kind, 0.0) if offer else 0.0
    return 1.0 - customer.leave_probability * (1.0 - effect)


def guardrail_violation(customer: CampaignCustomer, code: str, setup: CampaignSetup) -> str | None:
    """Which rule an offer to this customer breaks, checked afresh from the catalog and settings."""
    offer = _offer(setup, code)
    if offer is None:
        return None
    cost = offer.cost_cents(customer.fee_cents)
    if reason := ineligibility(offer, customer.context):
        return reason
    if worse_than_best_tariff(offer, customer.context, customer.fee_cents):
        return "worse than the best tariff"
    if cost > customer_budget_left_cents(customer.context, setup.settings):
        return "over the per-customer budget"
    if not within_authority(offer, cost, setup.agent_level, setup.settings):
        return "beyond the agent's authority"
    if customer.context.new_customer_fee_cents is not None and setup.settings.price_parity:
        at_risk = setup.settings.risk_band(customer.context.churn_probability) != "low"
        if at_risk and customer.fee_cents > customer.context.new_customer_fee_cents:
            return "pays more than a new customer"
    return None


def _score(name: str, customers: Sequence[CampaignCustomer], choices: Sequence[str], setup: CampaignSetup):
    kept = cost = value = 0.0
    offers_made = violations = 0
    for customer, code in zip(customers, choices, strict=True):
        offer = _offer(setup, code)
        stay = _stay_chance(customer, offer)
        offer_cost = offer.cost_cents(customer.fee_cents) if offer else 0
        kept += stay
        cost += offer_cost
        value += customer.margin_cents * stay - offer_cost
        offers_made += offer is not None
        violations += guardrail_violation(customer, code, setup) is not None
    return PolicyResult(
        name=name,
        customers=len(customers),
        kept=kept,
        offers_made=offers_made,
        offer_cost_cents=cost,
        net_value_cents=value,
        guardrail_violations=violations,
    )


def _relative_to_no_offers(results: list[PolicyResult]) -> None:
    baseline = next(result for result in results if result.name == "no_offers").net_value_cents
    for result in results:
        result.incremental_value_cents = result.net_value_cents - baseline
    for result in results:
        result.share_of_oracle = _share(result.net_value_cents, results)


def _share(net_value_cents: float, results: list[PolicyResult]) -> float | None:
    baseline = next(result for result in results if result.name == "no_offers").net_value_cents
    oracle = next((result for result in results if result.name == "oracle"), None)
    if oracle is None or oracle.net_value_cents <= baseline:
        return None
    return (net_value_cents - baseline) / (oracle.net_value_cents - baseline)
