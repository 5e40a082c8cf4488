import datetime as dt
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from retention.models import Contract, Customer, ProtectedAttributes, ServiceEvent
from retention.records import MAX_TENURE_DAYS
from tests.api.factories import DecisionFactory
from tests.conftest import api_client_with
from tests.factories import CustomerFactory

URL = "/api/v1/customers/bulk/"


def record(external_id: str = "CRM-1", **fields) -> dict:
    return {
        "external_id": external_id,
        "display_name": "J. de Vries",
        "segment": "consumer",
        "value_tier": "high",
        "signup_date": "2019-04-01",
        "monthly_fee": "54.95",
        "contract_type": "1 jaar",
        "contract_end": "2026-01-31",
        "products": ["Internet", "tv"],
        "region": "Utrecht",
        "phone": "06-12345678",
        "attributes": {"plan_speed": 500, "paperless": True, "payment": "iDEAL", "nps_hint": None},
        "protected": {"gender": "female"},
        **fields,
    }


def test_new_customers_are_created_with_their_contract_and_attributes(db, api_client):
    response = api_client.post(URL, {"customers": [record()]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "received": 1, "created": 1, "updated": 0, "unchanged": 0, "contracts": 1, "events": 0,
        "erased": 0, "erased_ids": [],
    }  # fmt: skip
    customer = Customer.objects.get(external_id="CRM-1")
    assert customer.products == ["internet", "tv"]
    assert customer.attributes == {"plan_speed": 500, "paperless": True, "payment": "iDEAL", "nps_hint": None}
    contract = Contract.objects.get(customer=customer)
    assert (contract.monthly_fee_cents, contract.contract_type, contract.end_date) == (
        5495,
        "1 jaar",
        dt.date(2026, 1, 31),
    )
    assert ProtectedAttributes.objects.get(customer=customer).values == {"gender": "female"}


def test_a_monthly_fee_may_be_a_json_number(db, api_client):
    api_client.post(URL, {"customers": [record(monthly_fee=29.85)]}, format="json")
    assert Contract.objects.get().monthly_fee_cents == 2985


def test_sending_the_same_records_again_changes_nothing(db, api_client):
    api_client.post(URL, {"customers": [record("A"), record("B")]}, format="json")
    again = api_client.post(URL, {"customers": [record("A"), record("B", region="Zwolle")]}, format="json").json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 1)
    assert Customer.objects.get(external_id="B").region == "Zwolle"
    assert Contract.objects.count() == 2


def test_tenure_becomes_a_signup_date_counted_back_from_today(db, api_client):
    api_client.post(URL, {"customers": [record(signup_date=None, tenure_months=24)]}, format="json")
    signup = Customer.objects.get().signup_date
    assert abs((timezone.localdate() - signup).days - 730) <= 1


def record_with_contract_history(external_id: str = "CRM-1", **fields) -> dict:
    """A record giving its contracts as a list: an ended one, then the running one with a discount."""
    return record(
        external_id,
        monthly_fee=None,
        contract_type="",
        contract_end=None,
        contracts=[
            {"monthly_fee": 40, "bundle": "internet_tv", "start_date": "2022-01-01", "end_date": "2023-01-01",
             "status": "ended"},
            {"monthly_fee": "45.50", "discount": "5", "discount_end": "2024-06-30", "start_date": "2023-01-01"},
        ],
        **fields,
    )  # fmt: skip


def test_contract_history_and_events_are_stored(db, api_client):
    history = record_with_contract_history(
        events=[{"kind": "complaint", "occurred_at": "2024-03-31T14:05:00+02:00", "note": "slow internet"}],
    )
    response = api_client.post(URL, {"customers": [history]}, format="json")
    assert response.status_code == 200, response.content
    assert sorted(Contract.objects.values_list("monthly_fee_cents", "discount_cents")) == [(4000, 0), (4550, 500)]
    event = ServiceEvent.objects.get()
    assert event.occurred_at == dt.datetime(2024, 3, 31, 12, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        ({"kind": "nps", "value": -50}, "value", "an NPS score is 0 to 10, not -50"),
        ({"kind": "nps", "value": 11}, "value", "an NPS score is 0 to 10, not 11"),
        ({"kind": "nps"}, "value", "an NPS answer needs its score, 0 to 10"),
        ({"kind": "outage", "value": -1.5}, "value", "outage hours cannot be negative (-1.5)"),
        ({"kind": "complaint", "occurred_at": "2099-01-01T10:00:00+01:00"}, "occurred_at", "is in the future"),
    ],
)
def test_an_event_that_cannot_have_happened_is_refused_and_nothing_is_stored(db, api_client, event, field, message):
    bad = record("BAD", events=[{"occurred_at": "2024-03-31T14:05:00+02:00", **event}])

    response = api_client.post(URL, {"customers": [bad]}, format="json")

    assert response.status_code == 400
    assert message in str(response.json()["error"])
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"contracts": [{"monthly_fee": 40, "start_date": "2024-05-01", "end_date": "2024-04-30"}]},
         "is before the start date 2024-05-01"),
        ({"signup_date": "2019-04-01", "contract_end": "2018-12-31"}, "a contract ends before the signup 2019-04-01"),
        ({"contracts": [{"monthly_fee": 40, "discount": 80, "start_date": "2025-12-15"}]},
         "is more than the monthly fee of 40.00 euros"),
    ],
)  # fmt: skip
def test_contract_dates_that_contradict_each_other_are_refused(db, api_client, changes, message):
    bad = {**record("BAD"), **changes}
    if "contracts" in changes:
        del bad["monthly_fee"], bad["contract_type"], bad["contract_end"]

    response = api_client.post(URL, {"customers": [bad]}, format="json")

    assert response.status_code == 400, response.content
    assert message in str(response.json()["error"]["records"][0]["fields"])
    assert not Customer.objects.exists()


def test_a_signup_more_than_a_century_back_is_refused_as_a_files_row_is(db, api_client):
    too_early = (timezone.localdate() - dt.timedelta(days=MAX_TENURE_DAYS + 1)).isoformat()
    earliest = (timezone.localdate() - dt.timedelta(days=MAX_TENURE_DAYS)).isoformat()

    refused = api_client.post(URL, {"customers": [record(signup_date=too_early)]}, format="json")
    accepted = api_client.post(URL, {"customers": [record(signup_date=earliest)]}, format="json")

    assert refused.status_code == 400
    assert "is more than 1,200 months ago" in json.dumps(refused.json())
    assert accepted.status_code == 200, accepted.content


@pytest.mark.parametrize("fee", [1e308, 10_000_000, "123456789.5"])
def test_a_fee_past_the_largest_amount_is_refused_as_an_amount(db, api_client, fee):
    response = api_client.post(URL, {"customers": [record("BIG", monthly_fee=fee)]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["records"][0]["fields"]["monthly_fee"] == ["must be less than 10,000,000 euros"]


def test_every_invalid_record_is_listed_and_nothing_is_stored(db, api_client):
    customers = [
        record("GOOD"),
        record("BAD-1", segment="alien", monthly_fee="12.345"),
        {"display_name": "no id"},
        record("BAD-3", events=[{"kind": "complaint", "occurred_at": "2024-03-31T14:05:00"}]),
        record("BAD-4", attributes={"tags": ["a", "b"]}),
    ]
    response = api_client.post(URL, {"customers": customers}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_records"
    listed = {(r["index"], r["external_id"]): set(r["fields"]) for r in error["records"]}
    assert listed == {
        (1, "BAD-1"): {"segment", "monthly_fee"},
        (2, None): {"external_id"},
        (3, "BAD-3"): {"events"},
        (4, "BAD-4"): {"attributes"},
    }
    assert not Customer.objects.exists()


def test_protected_characteristics_named_in_dutch_are_kept_as_protected(db, api_client):
    dutch = {"Geslacht": "v", "geboortedatum": "1980-01-01", "Nationaliteit": "NL", "Burgerlijke staat": "gehuwd"}
    response = api_client.post(
        URL, {"customers": [record("NL-1", attributes={**dutch, "plan_speed": 500})]}, format="json"
    )

    assert response.status_code == 200, response.content
    stored = Customer.objects.get(external_id="NL-1")
    assert stored.attributes == {"plan_speed": 500}
    assert stored.protected.values == {"gender": "female", **dutch}


def test_a_protected_characteristic_sent_as_an_attribute_is_kept_as_protected(db, api_client):
    customers = [
        record("NAMED", attributes={"Age band": "65+", "plan_speed": 500}),
        record("TWICE", attributes={"household": "single"}, protected={"household": "single"}),
    ]

    response = api_client.post(URL, {"customers": customers}, format="json")

    assert response.status_code == 200, response.content
    named, twice = Customer.objects.order_by("external_id")
    assert (named.attributes, named.protected.values) == ({"plan_speed": 500}, {"gender": "female", "Age band": "65+"})
    assert (twice.attributes, twice.protected.values) == ({}, {"household": "single"})


@pytest.mark.parametrize("number", [1e308, -2e15, 10**16])
def test_an_attribute_number_no_measurement_can_be_is_refused_naming_it(db, api_client, number):
    response = api_client.post(URL, {"customers": [record(attributes={"TotalCharges": number})]}, format="json")

    assert response.status_code == 400
    assert "TotalCharges: must be a finite number of at most 1e+15 either way" in response.content.decode()
    assert not Customer.objects.exists()


def test_the_same_key_with_two_values_in_attributes_and_protected_is_refused(db, api_client):
    conflicting = record(attributes={"gender": "female"}, protected={"gender": "male"})

    response = api_client.post(URL, {"customers": [conflicting]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["records"][0]["fields"]["attributes"] == [
        "'gender' is also sent under `protected`, with another value"
    ]
    assert not Customer.objects.exists()


def test_a_misspelt_field_is_refused_rather_than_ignored(db, api_client):
    response = api_client.post(URL, {"customers": [record(montly_fee="10")]}, format="json")
    assert response.status_code == 400
    assert "montly_fee" in response.json()["error"]["records"][0]["fields"]


def test_a_misspelt_field_and_a_bad_value_are_both_named_in_one_answer(db, api_client):
    response = api_client.post(URL, {"customers": [record(monthly_fee="abc", emial="x")]}, format="json")

    assert set(response.json()["error"]["records"][0]["fields"]) == {"monthly_fee", "emial"}


def test_a_misspelt_key_inside_a_contract_or_an_event_is_refused_too(db, api_client):
    misspelt = record_with_contract_history(
        events=[{"kind": "outage", "occurred_at": "2026-11-01T10:00:00Z", "hours": 20}]
    )
    misspelt["contracts"][1]["end_dat"] = "2026-12-31"

    response = api_client.post(URL, {"customers": [misspelt]}, format="json")

    assert response.status_code == 400
    fields = response.json()["error"]["records"][0]["fields"]
    assert "end_dat" in str(fields["contracts"]) and "is not a field of a contract" in str(fields["contracts"])
    assert "hours" in str(fields["events"]) and "is not a field of an event" in str(fields["events"])
    assert not Customer.objects.exists()


def test_a_customer_sent_twice_in_one_request_is_refused_as_ambiguous(db, api_client):
    response = api_client.post(
        URL, {"customers": [record("DUP-1"), record("DUP-1", phone="0612345678")]}, format="json"
    )

    assert response.status_code == 400
    (problem,) = response.json()["error"]["records"]
    assert (problem["index"], problem["fields"]) == (1, {"external_id": ["repeats record 0 of this request"]})
    assert not Customer.objects.exists()


def test_two_contracts_starting_the_same_day_are_refused(db, api_client):
    twice = record_with_contract_history()
    twice["contracts"][0]["start_date"] = twice["contracts"][1]["start_date"]

    response = api_client.post(URL, {"customers": [twice]}, format="json")

    assert response.status_code == 400
    assert "more than one contract starts on 2023-01-01" in str(response.json()["error"]["records"][0]["fields"])


def test_a_current_contract_given_twice_is_refused(db, api_client):
    both = record(contracts=[{"monthly_fee": 40, "start_date": "2023-01-01"}])
    response = api_client.post(URL, {"customers": [both]}, format="json")
    assert "contracts" in response.json()["error"]["records"][0]["fields"]


def test_more_than_ten_thousand_records_is_413(db, api_client):
    response = api_client.post(URL, {"customers": [{"external_id": "x"}] * 10_001}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_a_bulk_body_larger_than_djangos_form_limit_is_read_as_json(db, api_client, settings):
    # 4,000 records of about 800 bytes, as a CRM sends them: 3.3 MB, past Django's 2.5 MB for form bodies.
    records = [record(f"CRM-{number}", display_name="x" * 700) for number in range(4_000)]
    body = json.dumps({"customers": records})
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = api_client.post(URL, body, content_type="application/json")

    assert response.status_code == 400  # display names of 700 characters: every record is named, none stored
    assert response.json()["error"]["code"] == "invalid_records"
    assert len(response.json()["error"]["records"]) == 4_000
    assert not Customer.objects.exists()


def test_a_body_over_the_operations_own_limit_is_413_before_it_is_read(db, api_client):
    response = api_client.generic("POST", "/api/v1/recommendations/", b"{}", content_type="application/json",
                                  CONTENT_LENGTH=str(2_000_000))  # fmt: skip
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "the body is larger than 1,000,000 bytes"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("[" * 1000 + "]" * 1000, "nests too deeply"),
        ('{"customers": [{"external_id": "x\\ud800"}]}', "lone surrogate escape"),
        ('{"customers": [{"external_id": "x", "\\udfff": 1}]}', "lone surrogate escape"),
        ('{"customers": [{"external_id": "x", "external_id": "y"}]}', "the key 'external_id' is given twice"),
    ],
    ids=["nested 1,000 deep", "a lone surrogate in a text", "a lone surrogate in a key", "a key given twice"],
)
@pytest.mark.parametrize("path", [URL, "/api/v1/recommendations/", "/api/v1/renewals/", "/api/v1/scores/"])
def test_a_body_no_answer_could_repeat_or_no_reader_could_tell_is_a_parse_error_and_stores_nothing(
    db, api_client, path, body, said
):
    response = api_client.post(path, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error" and said in response.json()["error"]["message"]
    assert not Customer.objects.exists()


def test_a_surrogate_pair_is_one_character_and_stored_as_such(db, api_client):
    body = '{"customers": [{"external_id": "x", "display_name": "Jan \\ud83d\\ude00"}]}'

    response = api_client.post(URL, body, content_type="application/json")

    assert response.status_code == 200
    assert Customer.objects.get().display_name == "Jan \U0001f600"


def test_a_customer_number_the_api_could_not_address_is_refused(db, api_client):
    response = api_client.post(URL, {"customers": [{"external_id": "bulk"}]}, format="json")

    assert response.status_code == 400
    assert "/api/v1/customers/bulk/ is an operation" in str(response.json()["error"])
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "record",
    [
        {"external_id": "B-1", "tenure_months": True},
        {"external_id": "B-1", "monthly_fee": False},
        {"external_id": "B-1", "contracts": [{"monthly_fee": True, "start_date": "2026-01-01"}]},
    ],
    ids=["tenure", "fee", "a contract's fee"],
)
def test_true_or_false_where_a_number_belongs_is_refused_not_read_as_one_or_zero(db, api_client, record):
    response = api_client.post(URL, {"customers": [record]}, format="json")

    assert response.status_code == 400
    assert "must be a number, not true or false" in str(response.json()["error"])
    assert not Customer.objects.exists()


def test_json_with_nan_is_refused(db, api_client):
    response = api_client.post(URL, '{"customers": [{"external_id": "x", "monthly_fee": NaN}]}',
                               content_type="application/json")  # fmt: skip
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["error"]["message"]


def test_a_body_that_is_not_json_is_415(db, api_client):
    response = api_client.post(URL, "external_id=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


@pytest.mark.parametrize("body", [{}, {"customers": []}, {"customers": "CRM-1"}, [record()]])
def test_a_wrong_envelope_is_400(db, api_client, body):
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "customers" in response.json()["error"]["fields"]


def test_writing_customers_needs_its_scope(db):
    client, _ = api_client_with(["read", "score"])
    assert client.post(URL, {"customers": [record()]}, format="json").status_code == 403


def test_a_customer_whose_id_holds_a_slash_or_a_space_is_read_back(db, api_client):
    CustomerFactory(external_id="A/B 1?x")

    response = api_client.get("/api/v1/customers/A%2FB%201%3Fx/")

    assert response.status_code == 200
    assert response.json()["external_id"] == "A/B 1?x"


def test_a_customer_without_decisions_has_no_latest_risk(db, api_client):
    CustomerFactory(external_id="NL-7", products=["internet"])
    response = api_client.get("/api/v1/customers/NL-7/")
    assert response.status_code == 200
    body = response.json()
    assert (body["external_id"], body["products"], body["latest_risk"]) == ("NL-7", ["internet"], None)


def test_a_customer_shows_the_risk_of_the_newest_decision(db, api_client):
    customer = CustomerFactory(external_id="NL-8")
    DecisionFactory(customer=customer, churn_probability=0.2, risk_band="low")
    newest = DecisionFactory(customer=customer, churn_probability=0.71234, risk_band="high")
    latest = api_client.get("/api/v1/customers/NL-8/").json()["latest_risk"]
    assert latest["recommendation_id"] == str(newest.pk)
    assert (latest["churn_probability"], latest["risk_band"]) == (0.7123, "high")


def test_a_client_bound_to_a_team_sees_the_newest_risk_of_the_advice_it_answers_for(db, agent, other_team):
    bound, record = api_client_with(["read"], name="crm-utrecht")
    record.teams.set([agent.agent_profile.team])
    customer = CustomerFactory(external_id="NL-9")
    own_team = DecisionFactory(customer=customer, team=agent.agent_profile.team, churn_probability=0.3)
    DecisionFactory(customer=customer, team=other_team, churn_probability=0.6)  # newer, another team's

    latest = bound.get("/api/v1/customers/NL-9/").json()["latest_risk"]
    everyone = api_client_with(["read"], name="crm-all")[0].get("/api/v1/customers/NL-9/").json()["latest_risk"]

    assert (latest["recommendation_id"], latest["churn_probability"]) == (str(own_team.pk), 0.3)
    assert everyone["churn_probability"] == 0.6


def test_a_customer_shows_the_contracts_as_stored_newest_first(db, api_client):
    history = record_with_contract_history("CRM-9")
    assert api_client.post(URL, {"customers": [history]}, format="json").status_code == 200

    contracts = api_client.get("/api/v1/customers/CRM-9/").json()["contracts"]

    assert [(c["monthly_fee_cents"], c["discount_cents"], c["start_date"], c["status"]) for c in contracts] == [
        (4550, 500, "2023-01-01", "active"),
        (4000, 0, "2022-01-01", "ended"),
    ]
    assert contracts[1]["bundle"] == "internet_tv"


def test_an_unknown_customer_is_404(db, api_client):
    response = api_client.get("/api/v1/customers/nobody/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_customer_numbered_bulk_is_not_found_rather_than_a_method_the_bulk_address_lacks(db):
    """No customer can be numbered "bulk" (the bulk operation's address): reading or erasing one is a 404 as for
    any customer not found, as the customer operations document."""
    client, _ = api_client_with(["read", "write_customers", "erase_customers"])

    read = client.get("/api/v1/customers/bulk/")
    erased = client.delete("/api/v1/customers/bulk/?reference=ticket-1")

    assert (read.status_code, erased.status_code) == (404, 404)
    assert erased.json()["error"] == {"code": "not_found", "message": "no customer with external id 'bulk'"}
    assert APIClient().get("/api/v1/customers/bulk/").status_code == 401


def test_protected_values_are_part_of_the_whole_state_a_record_sends(db, api_client):
    api_client.post(URL, {"customers": [record()]}, format="json")

    changed = api_client.post(URL, {"customers": [record(protected={"gender": "male"})]}, format="json").json()
    assert Customer.objects.get().protected.values == {"gender": "male"}
    without = api_client.post(URL, {"customers": [record(protected={})]}, format="json").json()

    assert (changed["updated"], changed["unchanged"]) == (1, 0)
    assert (without["updated"], without["unchanged"]) == (1, 0)
    assert not ProtectedAttributes.objects.exists()
    again = api_client.post(URL, {"customers": [record(protected={})]}, format="json").json()
    assert (again["updated"], again["unchanged"]) == (0, 1)


NOT_TEXT = "must be text (a JSON string), not a number"


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("external_id", 1e20, [NOT_TEXT]),
        ("display_name", 12.5, [NOT_TEXT]),
        ("region", 1e20, [NOT_TEXT]),
        (
            "phone",
            612345678.0,
            ['must be text (a JSON string), not a number with a decimal point: send "612345678" or 612345678'],
        ),
        ("contract_type", True, ["must be text (a JSON string), not true or false"]),
        ("products", ["tv", 4.5], {"1": [NOT_TEXT]}),
    ],
)
def test_a_number_in_a_text_field_is_refused_not_stored_as_text(db, api_client, field, value, problem):
    response = api_client.post(URL, {"customers": [record(**{field: value})]}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "1 of 1 records are not valid; nothing was stored."
    assert error["records"][0]["fields"] == {field: problem}
    assert not Customer.objects.exists()


def test_a_refused_record_whose_id_is_a_number_is_listed_without_an_id_made_of_it(db, api_client):
    response = api_client.post(URL, {"customers": [record(1e20)]}, format="json")

    assert response.json()["error"]["records"][0]["external_id"] is None


def test_a_refused_record_whose_id_is_a_whole_number_is_listed_under_the_digits_it_would_be_stored_under(
    db, api_client
):
    response = api_client.post(URL, {"customers": [record(555001, region=1.5)]}, format="json")

    assert response.json()["error"]["records"][0]["external_id"] == "555001"


def test_a_number_in_a_contract_or_event_text_is_refused_at_its_place(db, api_client):
    contract = {"monthly_fee": "20.00", "bundle": 35.5}
    event = {"kind": "nps", "occurred_at": "2024-01-01T10:00:00Z", "value": 3, "note": 7.5}
    body = {"customers": [record(monthly_fee=None, contracts=[contract], events=[event])]}

    fields = api_client.post(URL, body, format="json").json()["error"]["records"][0]["fields"]

    assert fields == {"contracts": {"0": {"bundle": [NOT_TEXT]}}, "events": {"0": {"note": [NOT_TEXT]}}}


def test_a_whole_number_in_a_text_field_is_taken_as_its_digits_as_crms_number_their_customers(db, api_client):
    response = api_client.post(URL, {"customers": [record(123456789, phone=612345678)]}, format="json")

    assert response.status_code == 200, response.content
    assert Customer.objects.get().external_id == "123456789"
    assert Customer.objects.get().phone == "612345678"


def test_numbers_among_the_attributes_are_still_taken(db, api_client):
    response = api_client.post(
        URL, {"customers": [record(attributes={"plan_speed": 500.5, "lines": 2})]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert Customer.objects.get().attributes == {"plan_speed": 500.5, "lines": 2}


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        ({"signup_date": "2020-02-30"}, "signup_date", "the date 2020-02-30 does not exist: February 2020 has 29 days"),
        ({"contract_end": "2026-13-01"}, "contract_end", "the date 2026-13-01 does not exist: there is no month 13"),
        (
            {"signup_date": "30-01-2020"},
            "signup_date",
            "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
        ),
    ],
)
def test_a_date_that_does_not_exist_is_told_apart_from_one_in_a_wrong_format(db, api_client, fields, field, problem):
    response = api_client.post(URL, {"customers": [record(**fields)]}, format="json")

    assert response.json()["error"]["records"][0]["fields"] == {field: [problem]}


def test_an_event_on_a_day_that_does_not_exist_is_refused_as_such(db, api_client):
    event = {"kind": "complaint", "occurred_at": "2023-02-29T10:00:00+01:00"}

    refused = api_client.post(URL, {"customers": [record(events=[event])]}, format="json").json()["error"]["records"][0]

    assert refused["fields"] == {
        "events": {"0": {"occurred_at": ["the date 2023-02-29 does not exist: February 2023 has 28 days"]}}
    }
