import datetime as dt

import pytest
from django.utils import timezone

from retention.models import RenewalResult
from retention.services import renewals
from retention.services.renewals import RenewalReport, renewal_results_record
from tests.concurrency import ReadTogether, run_at_once
from tests.factories import CustomerFactory

URL = "/api/v1/renewals/"


@pytest.fixture
def customers(db):
    # Signed up well before the fixed dates below, whichever day the tests run on.
    return [CustomerFactory(external_id=number, signup_date=dt.date(2015, 3, 1)) for number in ("R-1", "R-2")]


def test_one_renewal_result_is_stored_from_the_crm(customers, api_client):
    response = api_client.post(URL, {"customer_id": "R-1", "result": "renewed", "date": "2025-01-31"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {"received": 1, "created": 1, "already_recorded": 0}
    result = RenewalResult.objects.get()
    assert (result.customer.external_id, result.result, result.date, result.source) == (
        "R-1", "renewed", dt.date(2025, 1, 31), "crm",
    )  # fmt: skip


def test_a_list_is_stored_and_sending_it_again_changes_nothing(customers, api_client):
    reports = [
        {"customer_id": "R-1", "result": "renewed", "date": "2025-01-31"},
        {"customer_id": "R-2", "result": "churned", "date": "2025-02-28"},
        {"customer_id": "R-2", "result": "churned", "date": "2025-02-28"},
    ]
    first = api_client.post(URL, reports, format="json").json()
    again = api_client.post(URL, reports, format="json").json()
    assert first == {"received": 3, "created": 2, "already_recorded": 1}
    assert again == {"received": 3, "created": 0, "already_recorded": 3}
    assert RenewalResult.objects.count() == 2


def test_the_same_result_within_half_a_year_is_the_same_renewal_reported_again_as_a_files_label_is(
    customers, api_client
):
    # A CRM file labelled the customer churned as of the 1st; the CRM later reports the same departure by its day.
    RenewalResult.objects.create(customer=customers[0], result="churned", date=dt.date(2025, 11, 1), source="file")
    reports = [
        {"customer_id": "R-1", "result": "churned", "date": "2025-11-25"},
        {"customer_id": "R-1", "result": "churned", "date": "2025-10-20"},
        {"customer_id": "R-2", "result": "renewed", "date": "2025-01-31"},
        {"customer_id": "R-2", "result": "renewed", "date": "2025-09-30"},
    ]

    response = api_client.post(URL, reports, format="json")

    assert response.json() == {"received": 4, "created": 2, "already_recorded": 2}
    stored = RenewalResult.objects.order_by("customer__external_id", "date").values_list(
        "customer__external_id", "date"
    )
    assert list(stored) == [
        ("R-1", dt.date(2025, 11, 1)),
        ("R-2", dt.date(2025, 1, 31)),
        ("R-2", dt.date(2025, 9, 30)),  # 242 days on: the next renewal
    ]


def test_an_unknown_customer_refuses_the_whole_list(customers, api_client):
    reports = [
        {"customer_id": "R-1", "result": "renewed", "date": "2025-01-31"},
        {"customer_id": "ghost", "result": "churned", "date": "2025-01-31"},
    ]
    response = api_client.post(URL, reports, format="json")
    assert response.status_code == 422
    assert "ghost" in response.json()["error"]["fields"]["customer_id"][0]
    assert not RenewalResult.objects.exists()


def test_a_result_dated_in_the_future_is_refused(customers, api_client):
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    response = api_client.post(URL, {"customer_id": "R-1", "result": "renewed", "date": tomorrow}, format="json")
    assert response.status_code == 422
    assert response.json()["error"]["fields"]["date"] == [
        f"a renewal result cannot be dated in the future (R-1 on {tomorrow})"
    ]


def test_both_results_for_one_customer_and_day_are_refused_in_a_list_and_against_what_is_stored(customers, api_client):
    renewed = {"customer_id": "R-1", "result": "renewed", "date": "2025-01-31"}
    churned = {**renewed, "result": "churned"}

    in_one_list = api_client.post(URL, [renewed, churned], format="json")
    first = api_client.post(URL, renewed, format="json")
    later = api_client.post(URL, churned, format="json")

    assert (in_one_list.status_code, first.status_code, later.status_code) == (422, 201, 422)
    assert "R-1 on 2025-01-31" in later.json()["error"]["fields"]["result"][0]
    assert list(RenewalResult.objects.values_list("result", flat=True)) == ["renewed"]


def test_a_result_dated_before_the_customers_signup_is_refused(customers, api_client):
    CustomerFactory(external_id="R-3", signup_date=dt.date(2020, 5, 1))

    response = api_client.post(URL, {"customer_id": "R-3", "result": "churned", "date": "1900-01-01"}, format="json")

    assert response.status_code == 422
    assert "before the signup (R-3 on 1900-01-01)" in response.json()["error"]["fields"]["date"][0]
    assert not RenewalResult.objects.exists()


def test_a_bad_report_in_a_list_is_400_by_position(customers, api_client):
    reports = [
        {"customer_id": "R-1", "result": "renewed", "date": "2025-01-31"},
        {"customer_id": "R-2", "result": "maybe", "date": "31-01-2025"},
    ]
    response = api_client.post(URL, reports, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert list(fields) == ["1"]
    assert set(fields["1"]) == {"result", "date"}


def test_reporting_renewals_needs_the_outcomes_scope(customers, read_only_api_client):
    body = {"customer_id": "R-1", "result": "renewed", "date": "2025-01-31"}
    assert read_only_api_client.post(URL, body, format="json").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_renewed_and_churned_reported_at_the_same_moment_store_one(postgresql, monkeypatch):
    CustomerFactory(external_id="R-1", signup_date=dt.date(2015, 3, 1))
    monkeypatch.setattr(renewals, "_contradictions", ReadTogether().after(renewals._contradictions))

    def report(result: str):
        def request() -> str:
            renewal_results_record(reports=[RenewalReport(customer_id="R-1", result=result, date=dt.date(2025, 1, 31))])
            return "stored"

        return request

    outcomes = run_at_once(report("renewed"), report("churned"))

    assert outcomes.count("stored") == 1, outcomes
    assert RenewalResult.objects.count() == 1
    assert "a customer either renewed or churned on a day" in next(o for o in outcomes if o != "stored")


def test_a_customer_id_sent_as_a_number_is_refused_as_not_text(db, api_client):
    CustomerFactory(external_id="124", signup_date=dt.date(2015, 3, 1))

    response = api_client.post(
        URL, [{"customer_id": 1.245e2, "result": "renewed", "date": "2025-01-31"}], format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"0": {"customer_id": ["must be text (a JSON string), not a number"]}}
    assert not RenewalResult.objects.exists()


def test_a_date_that_does_not_exist_is_refused_as_such(customers, api_client):
    response = api_client.post(URL, {"customer_id": "R-1", "result": "renewed", "date": "2025-02-29"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "date": ["the date 2025-02-29 does not exist: February 2025 has 28 days"]
    }
