"""The decision log joined with what happened: one row per decision that a renewal result labels.

This is the logged bandit feedback off-policy evaluation learns from: the context (features, scores,
ranked offers), what the logging policy recommended and with which chance, the treatment the
customer actually got, and the reward it earned.

Labelling rules:
- A decision is labelled by the customer's first renewal result dated on or after the decision's
  `as_of` date (in the project's time zone, the one renewal dates are reported in). Two results on
  that same day: the first stored wins.
- One renewal labels one decision: when the customer had several decisions before the same
  renewal result, only the latest day's is kept (the earlier ones were superseded before the
  customer decided), and of that day's the latest that an agent logged anything on, else the latest.
  Advice opened again after the call and left without a word does not supersede what was offered
  and answered: the renewal would otherwise teach that the customer stayed on no offer. Across days
  the latest wins whatever was logged on it: whether an agent logs anything depends on what was
  recommended, and on another day the recommendation was drawn anew, so preferring decisions acted on
  would keep more of those that recommended an offer than their logged chances say.
- `since` and `until` select decisions by `as_of` (since ≤ as_of < until) after labelling, so a
  decision just inside the window is still dropped when a later one, outside it, superseded it.

Treatment: the accepted offer if the customer accepted one (the latest acceptance not corrected by
a later decline of the same offer), else the offer last put to the customer (presented, declined or
thought over), else no offer (""). Reward in cents: the margin the renewal keeps over the policy's
horizon when the customer stayed, else 0, minus the cost of the accepted offer.

The number of queries is fixed (five) however many decisions, actions and results there are.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from ml.policy import NO_OFFER, PolicySettings
from retention.models import SHOWN_KINDS, STANDING_ANSWER_KINDS, Decision, DecisionAction, PolicyConfig, RenewalResult
from retention.selectors.budget import day_start
from retention.selectors.decisions import stored_json_of

COLUMNS = (
    "decision_id",
    "customer_id",
    "team_id",
    "agent_id",
    "as_of",
    "policy_version",
    "churn_probability",
    "risk_band",
    "features",
    "offers",
    "recommended_code",
    "greedy_code",
    "propensity",
    "explored",
    "control_group",
    "stay_probability_without_offer",
    "renewal_fee_cents",
    "margin_cents",
    "renewal_date",
    "treatment_code",
    "treatment_kind",
    "accepted_cost_cents",
    "stayed",
    "reward_cents",
)
NO_TREATMENT_KIND = "none"
LINEAGE_FIELDS = ("id", "customer_id", "as_of", "created_at", "acted_on")
RESULT_FIELDS = ("id", "customer_id", "result", "date", "created_at")
ACTION_FIELDS = ("id", "decision_id", "kind", "offer_code", "cost_cents", "created_at")
DECISION_FIELDS = (
    "id",
    "customer_id",
    "team_id",
    "agent_id",
    "as_of",
    "created_at",
    "policy_version",
    "churn_probability",
    "risk_band",
    "features",
    "offers",
    "recommended_offer_code",
    "greedy_offer_code",
    "propensity",
    "explored",
    "control_group",
    "stay_probability_without_offer",
    "renewal_fee_cents",
)


class OutcomeLogError(ValueError):
    """The log holds a decision that cannot be valued (e.g. its policy version is not stored)."""


def logged_outcomes(
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    among: QuerySet[Decision] | None = None,
    with_features: bool = True,
) -> pd.DataFrame:
    """Labelled decisions with `as_of` in [since, until), oldest first, one row each (columns: COLUMNS).

    `among` keeps to those decisions (a team's, on the review pages): each still gets the label it gets in the whole
    log, as the customers' other decisions are read all the same. Without `with_features` the features column is
    None, for callers that read only what was kept. The stored JSON (offers, features) is read for labelled
    decisions only: at 100,000 decisions, decoding it for every decision in a window took most of the KPI page's
    time. `since` and `until` must be time-zone aware. Raises OutcomeLogError when a labelled decision names a
    policy version that is not stored, or has no fee to value its renewal with.
    """
    window = _decisions_between(since, until)
    if among is not None:
        window = window.filter(pk__in=among.values("pk"))
    labels = _labels(_lineage(window, since), _results(window))
    decisions = _frame(window.values_list(*PLAIN_DECISION_FIELDS), PLAIN_DECISION_FIELDS)
    rows = decisions.merge(labels, left_on="id", right_on="decision_id", how="inner")
    if rows.empty:
        return _empty()
    stored = ("offers", "features") if with_features else ("offers",)
    rows = rows.merge(_frame(stored_json_of(rows["id"], stored), ("id", *stored)), on="id", how="left")
    if not with_features:
        rows["features"] = None
    return _outcome_frame(rows, _treatments(_actions(window)), policy_settings_by_version())


# The JSON a decision stores, read apart from its plain fields and only for the decisions that need it.
JSON_DECISION_FIELDS = ("features", "offers")
PLAIN_DECISION_FIELDS = tuple(name for name in DECISION_FIELDS if name not in JSON_DECISION_FIELDS)


def _decisions_between(since: dt.datetime | None, until: dt.datetime | None) -> QuerySet[Decision]:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and timezone.is_naive(moment):
            raise ValueError(f"{name} must be time-zone aware")
    condition = Q()
    if since is not None:
        condition &= Q(as_of__gte=since)
    if until is not None:
        condition &= Q(as_of__lt=until)
    return Decision.objects.filter(condition)


def _lineage(window: QuerySet[Decision], since: dt.datetime | None) -> pd.DataFrame:
    """Every decision that could supersede one in the window: same customers, not earlier than the window's
    first day (a decision acted on earlier that day takes the label from one left untouched after it)."""
    later = Decision.objects.filter(customer_id__in=window.values("customer_id"))
    if since is not None:
        later = later.filter(as_of__gte=day_start(timezone.localdate(since)))
    later = later.annotate(acted_on=Exists(DecisionAction.objects.filter(decision_id=OuterRef("pk"))))
    return _frame(later.values_list(*LINEAGE_FIELDS), LINEAGE_FIELDS)


def _results(window: QuerySet[Decision]) -> pd.DataFrame:
    results = RenewalResult.objects.filter(customer_id__in=window.values("customer_id"))
    return _frame(results.values_list(*RESULT_FIELDS), RESULT_FIELDS)


def _actions(window: QuerySet[Decision]) -> pd.DataFrame:
    actions = DecisionAction.objects.filter(decision_id__in=window.values("id"))
    return _frame(actions.values_list(*ACTION_FIELDS), ACTION_FIELDS)


def _frame(rows, columns: tuple[str, ...]) -> pd.DataFrame:
    """A frame of query rows; decision ids as text, which pandas sorts and joins far faster than UUID objects."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(columns))
    for column in ("id", "decision_id"):
        if column in frame and frame[column].dtype == object:
            frame[column] = frame[column].astype(str)
    return frame


def policy_settings_by_version() -> dict[int, PolicySettings]:
    """Every policy version's settings, in one query; version 0 is the built-in defaults used before any is stored."""
    stored = PolicyConfig.objects.values_list("version", "values")
    return {0: PolicySettings(), **{version: PolicySettings.from_values(values) for version, values in stored}}


def _labels(lineage: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """decision_id, renewal_date and stayed for the decision that labels each result (see the module's rules)."""
    if lineage.empty or results.empty:
        return pd.DataFrame(columns=["decision_id", "renewal_date", "stayed"])
    decisions = lineage.assign(day=_local_days(lineage["as_of"])).sort_values("day", kind="stable")
    first_per_day = results.sort_values(["date", "created_at", "id"]).drop_duplicates(["customer_id", "date"])
    first_per_day = first_per_day.assign(day=pd.to_datetime(first_per_day["date"])).sort_values("day", kind="stable")
    matched = pd.merge_asof(
        decisions,
        first_per_day[["customer_id", "day", "id", "result", "date"]].rename(columns={"id": "result_id"}),
        on="day",
        by="customer_id",
        direction="forward",
    ).dropna(subset=["result_id"])
    # The latest day's decisions, and of those the latest acted on: within a day they share their exploration
    # draw (`ml.policy.exploration_key`), so preferring one acted on does not pick by what was recommended.
    ordered = matched.sort_values(["day", "acted_on", "as_of", "created_at", "id"])
    latest = ordered.drop_duplicates(["result_id"], keep="last")
    return pd.DataFrame(
        {
            "decision_id": latest["id"],
            "renewal_date": latest["date"],
            "stayed": latest["result"] == RenewalResult.Result.RENEWED,
        }
    )


def _local_days(moments: pd.Series) -> pd.Series:
    """Calendar days in the project's time zone, as midnight timestamps comparable with renewal dates."""
    local = pd.to_datetime(moments, utc=True).dt.tz_convert(timezone.get_default_timezone_name())
    return local.dt.tz_localize(None).dt.normalize()


def _treatments(actions: pd.DataFrame) -> pd.DataFrame:
    """Per decision: the treatment code and what an accepted offer cost."""
    actions = actions.sort_values(["created_at", "id"])
    with_offer = actions[actions["offer_code"] != NO_OFFER]
    final = with_offer[with_offer["kind"].isin(STANDING_ANSWER_KINDS)].drop_duplicates(
        ["decision_id", "offer_code"], keep="last"
    )
    accepted = final[final["kind"] == DecisionAction.Kind.ACCEPTED].drop_duplicates("decision_id", keep="last")
    shown = with_offer[with_offer["kind"].isin(SHOWN_KINDS)].drop_duplicates("decision_id", keep="last")
    treatments = pd.concat(
        [
            accepted.assign(accepted_cost_cents=accepted["cost_cents"]),
            shown[~shown["decision_id"].isin(accepted["decision_id"])].assign(accepted_cost_cents=0),
        ]
    )
    return treatments[["decision_id", "offer_code", "accepted_cost_cents"]].rename(
        columns={"offer_code": "treatment_code"}
    )


def _outcome_frame(rows: pd.DataFrame, treatments: pd.DataFrame, policies: dict[int, PolicySettings]) -> pd.DataFrame:
    rows = rows.sort_values(["as_of", "created_at", "id"]).reset_index(drop=True)
    rows = rows.drop(columns=["decision_id"]).merge(treatments, left_on="id", right_on="decision_id", how="left")
    rows["treatment_code"] = rows["treatment_code"].where(rows["treatment_code"].notna(), NO_OFFER).astype(str)
    rows["accepted_cost_cents"] = pd.to_numeric(rows["accepted_cost_cents"]).fillna(0).astype("int64")
    rows["renewal_fee_cents"] = [
        _renewal_fee_cents(fee, decision_id)
        for fee, decision_id in zip(rows["renewal_fee_cents"], rows["id"], strict=True)
    ]
    rows["margin_cents"] = [
        _margin_cents(fee, version, decision_id, policies)
        for fee, version, decision_id in zip(rows["renewal_fee_cents"], rows["policy_version"], rows["id"], strict=True)
    ]
    rows["treatment_kind"] = [
        _offer_kind(offers, code) for offers, code in zip(rows["offers"], rows["treatment_code"], strict=True)
    ]
    rows["stayed"] = rows["stayed"].astype(bool)
    rows["reward_cents"] = np.where(rows["stayed"], rows["margin_cents"], 0) - rows["accepted_cost_cents"]
    frame = rows.rename(
        columns={"recommended_offer_code": "recommended_code", "greedy_offer_code": "greedy_code"}
    ).assign(
        decision_id=rows["id"],
        as_of=pd.to_datetime(rows["as_of"], utc=True),
        team_id=rows["team_id"].astype("Int64"),
        agent_id=rows["agent_id"].astype("Int64"),
        stay_probability_without_offer=rows["stay_probability_without_offer"].astype(float),
    )
    return frame[list(COLUMNS)].astype({"reward_cents": "int64", "margin_cents": "int64"})


def _renewal_fee_cents(fee_cents, decision_id: str) -> int:
    """The fee the offers were priced on (decisions stored before it had a field got it from their features in
    migration 0018)."""
    if pd.isna(fee_cents):
        raise OutcomeLogError(f"decision {decision_id} has no renewal fee to value")
    return int(fee_cents)


def _margin_cents(fee_cents: int, version: int, decision_id: str, policies: dict[int, PolicySettings]) -> int:
    settings = policies.get(version)
    if settings is None:
        raise OutcomeLogError(f"decision {decision_id} names policy version {version}, which is not stored")
    return round(fee_cents * settings.margin_rate * settings.horizon_months)


def _offer_kind(offers: list[dict], code: str) -> str:
    if code == NO_OFFER:
        return NO_TREATMENT_KIND
    return next((offer["kind"] for offer in offers if offer["code"] == code), NO_TREATMENT_KIND)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in COLUMNS})
