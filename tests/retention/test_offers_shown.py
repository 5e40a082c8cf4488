"""Which of a decision's ranked offers a list shows: the best few, and never without the recommended one."""

from retention.models import Decision


def ranked(*codes: str) -> list[dict]:
    return [{"code": code, "expected_net_value_cents": 100 * (len(codes) - rank)} for rank, code in enumerate(codes)]


def codes(offers: list[dict]) -> list[str]:
    return [offer["code"] for offer in offers]


def test_the_best_few_in_rank_order_and_the_rest_apart():
    decision = Decision(offers=ranked("a", "b", "c", "d", "e"), recommended_offer_code="a")

    shown, rest = decision.offers_split(limit=3)

    assert (codes(shown), codes(rest)) == (["a", "b", "c"], ["d", "e"])


def test_a_recommended_offer_ranked_below_the_limit_is_listed_after_the_best():
    # e.g. the three best need a team lead, or an exploring decision recommends one further down
    decision = Decision(offers=ranked("a", "b", "c", "d", "e"), recommended_offer_code="e")

    assert codes(decision.offers_shown(limit=3)) == ["a", "b", "c", "e"]


def test_offers_named_to_keep_are_listed_too_in_rank_order():
    decision = Decision(offers=ranked("a", "b", "c", "d", "e", "f"), recommended_offer_code="")

    shown, rest = decision.offers_split(limit=2, keep={"e", "c", ""})

    assert (codes(shown), codes(rest)) == (["a", "b", "c", "e"], ["d", "f"])


def test_limit_zero_lists_every_offer():
    decision = Decision(offers=ranked("a", "b", "c", "d"), recommended_offer_code="")

    assert codes(decision.offers_shown(limit=0)) == ["a", "b", "c", "d"]
    assert Decision(offers=[], recommended_offer_code="").offers_split(limit=3) == ([], [])
