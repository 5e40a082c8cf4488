"""A customer erased at their request stays erased: the CRM sending them again stores nothing till they are let back."""

import io

import pytest
from django.core.management import CommandError, call_command

from retention.models import Customer, ErasedCustomerId
from retention.records import CustomerRecord
from retention.selectors.erased_ids import erased_ids_among
from retention.services.customers import customers_upsert
from retention.services.erasure import customer_erase
from tests.conftest import api_client_with
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def erased():
    """NL1234567, erased at their request; the anonymous row they leave."""
    customer = CustomerFactory(external_id="NL1234567", display_name="Jan de Vries")
    customer_erase(customer=customer, requested_by="dpo", reference="AVG-17")
    customer.refresh_from_db()
    return customer


def record(external_id: str, name: str = "Jan de Vries") -> CustomerRecord:
    return CustomerRecord(external_id=external_id, display_name=name)


def test_the_crm_sending_an_erased_customer_again_through_the_api_stores_nothing_of_them(erased):
    client, _ = api_client_with(["write_customers"])
    body = {"customers": [{"external_id": "NL1234567", "display_name": "Jan de Vries"}, {"external_id": "NL2"}]}

    response = client.post("/api/v1/customers/bulk/", body, format="json")

    assert response.status_code == 200
    assert response.json() | {"received": 2, "created": 1, "erased": 1, "erased_ids": ["NL1234567"]} == response.json()
    assert not Customer.objects.filter(external_id="NL1234567").exists()
    assert not Customer.objects.filter(display_name="Jan de Vries").exists()
    assert Customer.objects.filter(external_id="NL2").exists()


def test_what_is_kept_to_refuse_them_names_no_one_and_depends_on_the_sites_key(erased, settings):
    digest = ErasedCustomerId.objects.get().digest

    assert len(digest) == 64 and "1234567" not in digest
    settings.SECRET_KEY = "another site's key, long enough to be a real one 0123456789"
    assert erased_ids_among(["NL1234567"]) == {}


def test_a_customer_let_back_is_stored_as_a_new_customer_and_the_erased_row_stays_anonymous(erased):
    out = io.StringIO()
    call_command("allow_customer_again", "NL1234567", stdout=out)
    summary = customers_upsert(records=[record("NL1234567")], source="crm")

    assert "NL1234567 (erased " in out.getvalue() and ", reference AVG-17) may be stored again" in out.getvalue()
    assert (summary.created, summary.erased) == (1, [])
    back = Customer.objects.get(external_id="NL1234567")
    assert back.pk != erased.pk
    erased.refresh_from_db()
    assert erased.display_name == "" and erased.external_id.startswith("erased-")


def test_letting_back_an_id_nothing_refuses_says_so(erased):
    with pytest.raises(CommandError, match="'NL7654321' is not the id of a customer erased at their request"):
        call_command("allow_customer_again", "NL7654321")
    assert ErasedCustomerId.objects.count() == 1


def test_the_refusal_outlives_a_rotated_secret_key(erased, settings):
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = (
        "the new key of this site, long enough 0123456789abcdef",
        [old_key],
    )

    kept_out = customers_upsert(records=[record("NL1234567")], source="crm")
    settings.SECRET_KEY_FALLBACKS = []  # the old key dropped once the rotation is done
    still_kept_out = customers_upsert(records=[record("NL1234567")], source="crm")

    assert kept_out.erased == still_kept_out.erased == ["NL1234567"]
    assert not Customer.objects.filter(external_id="NL1234567").exists()


def test_a_customer_erased_for_the_retention_period_may_sign_up_again():
    customer = CustomerFactory(external_id="NL5550001")
    customer_erase(customer=customer, requested_by="retention period", refuse_again=False)

    summary = customers_upsert(records=[record("NL5550001")], source="crm")

    assert (summary.created, summary.erased) == (1, [])
    assert not ErasedCustomerId.objects.exists()


def test_the_erase_command_says_how_the_crm_may_send_them_again_and_the_admin_shows_it(admin_client):
    CustomerFactory(external_id="NL1234567")
    out = io.StringIO()

    call_command("erase_customer", "NL1234567", "--no-input", stdout=out)
    listing = admin_client.get("/admin/retention/erasure/")

    assert "is left out until `allow_customer_again NL1234567`" in out.getvalue()
    assert listing.status_code == 200 and "CRM&#x27;s id refused" in listing.text
