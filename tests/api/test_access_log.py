"""The access log: every open of a customer in the panel and every CRM read of one leaves a row saying who, when
and why; the customer's export gives the moments by role; rows go after ACCESS_LOG_DAYS."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.celery import app
from retention.models import CustomerAccess
from retention.selectors.customer_data import customer_data_export
from retention.services.access_log import accesses_expire, accesses_record
from tests.conftest import api_client_with
from tests.factories import ContractFactory, CustomerFactory, TariffFactory, UserFactory

PASSWORD = "a-long-test-password-1"


@pytest.fixture
def customers(db):
    TariffFactory()
    customers = [CustomerFactory(external_id=f"A-{n}", display_name=f"Klant {n}") for n in range(3)]
    for customer in customers:
        ContractFactory(customer=customer)
    return customers


def accesses() -> list[tuple[str, str, str]]:
    """(customer number, purpose, reader) per row, oldest first."""
    rows = CustomerAccess.objects.order_by("at", "pk").select_related("customer", "user", "api_client")
    return [
        (row.customer.external_id, row.purpose, row.user.username if row.user else row.api_client.name) for row in rows
    ]


def test_an_agent_opening_a_customer_or_listing_them_in_a_search_is_logged(client, churn_champion, customers, agent):
    agent.set_password(PASSWORD)
    agent.save()
    client.login(username=agent.username, password=PASSWORD)

    client.post("/panel/", {"q": "Klant 1"}, follow=True)
    client.post("/panel/", {"q": "Klant"}, follow=True)  # one word: lists nobody
    client.get("/panel/?customer=A-1")
    client.get("/panel/?customer=nobody")

    assert accesses() == [("A-1", "search", agent.username), ("A-1", "call", agent.username)]


def test_a_panel_that_shows_no_customer_logs_no_access(client, customers):
    administrator = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(administrator)

    refused = client.get("/panel/?customer=A-1")

    assert refused.status_code == 403 and accesses() == []


def test_a_crm_reading_a_record_and_asking_scores_and_advice_is_logged(churn_champion, customers):
    crm, _ = api_client_with(["read", "score"], name="crm-north")

    assert crm.get("/api/v1/customers/A-0/").status_code == 200
    assert crm.get("/api/v1/customers/nobody/").status_code == 404
    assert crm.post("/api/v1/scores/", {"customer_ids": ["A-2", "A-1", "A-2"]}, format="json").status_code == 200
    assert crm.post("/api/v1/scores/", {"customer_ids": ["A-1", "ghost"]}, format="json").status_code == 422
    advice = crm.post("/api/v1/recommendations/", {"customer_id": "A-0", "channel": "api"}, format="json")
    assert advice.status_code == 201, advice.content

    assert sorted(accesses()) == sorted(
        [
            ("A-0", "record", "crm-north"),
            ("A-2", "score", "crm-north"),
            ("A-1", "score", "crm-north"),
            ("A-0", "advice", "crm-north"),
        ]
    )


def test_advice_refused_over_an_objection_still_logs_the_best_tariff_read(churn_champion, customers):
    crm, _ = api_client_with(["score"], name="crm-west")
    customers[1].objects_to_profiling = True
    customers[1].save()

    refused = crm.post("/api/v1/recommendations/", {"customer_id": "A-1", "channel": "api"}, format="json")

    assert refused.status_code == 422 and "best_tariff" in refused.json()["error"]
    assert accesses() == [("A-1", "advice", "crm-west")]


def test_the_customers_export_gives_when_and_why_by_role_not_by_name(customers):
    agent = UserFactory(username="lisa.bakker")
    _, record = api_client_with(["read"], name="crm-south")
    accesses_record(customers=[customers[0]], purpose="call", reader=agent)
    accesses_record(customers=[customers[0]], purpose="record", reader=record)
    accesses_record(customers=[customers[1]], purpose="record", reader=record)

    consultations = customer_data_export(customer=customers[0])["consultations"]

    assert [(row["purpose"], row["by"]) for row in consultations] == [("call", "staff"), ("record", "crm")]
    assert all(dt.datetime.fromisoformat(row["at"]) <= timezone.now() for row in consultations)
    assert agent.username not in str(consultations) and "crm-south" not in str(consultations)


def test_rows_older_than_the_access_log_period_are_removed(customers, agent, settings):
    settings.ACCESS_LOG_DAYS = 30
    now = timezone.now()
    for days in (31, 29):
        CustomerAccess.objects.create(customer=customers[0], user=agent, purpose="call", at=now - dt.timedelta(days))

    assert accesses_expire(now=now) == 1
    assert [row.at for row in CustomerAccess.objects.all()] == [now - dt.timedelta(29)]
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "retention.accesses_expire" in scheduled


def test_a_row_names_one_reader_and_a_known_purpose(customers, agent):
    _, record = api_client_with(["read"])
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerAccess.objects.create(customer=customers[0], user=agent, api_client=record, purpose="call")
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerAccess.objects.create(customer=customers[0], purpose="call")
    with pytest.raises(ValueError, match="unknown access purpose"):
        accesses_record(customers=customers, purpose="curiosity", reader=agent)


def test_the_admin_lists_accesses_read_only_and_finds_them_by_login(client, customers, agent):
    accesses_record(customers=[customers[2]], purpose="call", reader=agent)
    accesses_record(customers=[customers[1]], purpose="call", reader=UserFactory(username="someone-else"))
    admin = UserFactory(username="privacy-officer", is_staff=True, is_superuser=True)
    client.force_login(admin)

    found = client.get("/admin/retention/customeraccess/", {"q": agent.username})

    assert found.status_code == 200
    assert "A-2" in found.text and "A-1" not in found.text
    assert client.get("/admin/retention/customeraccess/add/").status_code == 403


def test_opening_a_customer_or_their_protected_values_in_the_admin_is_logged(client, customers):
    from retention.models import ProtectedAttributes

    protected = ProtectedAttributes.objects.create(customer=customers[2], values={"gender": "V"})
    administrator = UserFactory(username="privacy-officer", is_staff=True, is_superuser=True)
    client.force_login(administrator)

    client.get(f"/admin/retention/customer/{customers[1].pk}/change/")
    client.get(f"/admin/retention/protectedattributes/{protected.pk}/change/")
    client.get("/admin/retention/customer/")  # the list: no one customer's data opened

    assert accesses() == [("A-1", "admin", "privacy-officer"), ("A-2", "admin", "privacy-officer")]
