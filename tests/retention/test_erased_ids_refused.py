"""A customer erased at their request stays erased: the CRM sending them again stores nothing till they are let back."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils.crypto import salted_hmac

from retention.checks import erased_id_refusals_check
from retention.models import Customer, ErasedCustomerId
from retention.records import CustomerRecord
from retention.selectors.erased_ids import erased_id_digest, erased_ids_among, key_fingerprint
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
    call_command("allow_customer_again", " NL1234567 ", "--reference", "consent 2026-11", stdout=out)
    summary = customers_upsert(records=[record("NL1234567")], source="crm")

    assert "NL1234567 (erased " in out.getvalue() and ", reference AVG-17) may be stored again" in out.getvalue()
    assert (summary.created, summary.erased) == (1, [])
    back = Customer.objects.get(external_id="NL1234567")
    assert back.pk != erased.pk
    erased.refresh_from_db()
    assert erased.display_name == "" and erased.external_id.startswith("erased-")
    refusal = ErasedCustomerId.objects.get()
    assert refusal.allowed_at is not None and refusal.allowed_by.startswith("command line (")
    assert refusal.allowed_reference == "consent 2026-11"


def test_letting_back_twice_or_an_id_nothing_refuses_says_which(erased):
    call_command("allow_customer_again", "NL1234567", stdout=io.StringIO())

    with pytest.raises(CommandError, match=r"'NL1234567' was let back already, on .* by command line \("):
        call_command("allow_customer_again", "NL1234567")
    with pytest.raises(CommandError, match="'nl1234567' is not the number of a customer erased at their request"):
        call_command("allow_customer_again", "nl1234567")


def test_a_customer_let_back_and_erased_again_is_refused_again(erased):
    call_command("allow_customer_again", "NL1234567", stdout=io.StringIO())
    customers_upsert(records=[record("NL1234567")], source="crm")

    customer_erase(customer=Customer.objects.get(external_id="NL1234567"), requested_by="dpo")

    assert customers_upsert(records=[record("NL1234567")], source="crm").erased == ["NL1234567"]
    assert ErasedCustomerId.objects.filter(allowed_at__isnull=True).count() == 1
    assert ErasedCustomerId.objects.count() == 2


def test_the_admin_stores_no_customer_under_a_refused_id(erased, admin_client):
    other = CustomerFactory(external_id="NL7654321")
    form = {"external_id": "NL1234567", "segment": "consumer", "products": "[]", "attributes": "{}"}
    inline = {"contracts-TOTAL_FORMS": "0", "contracts-INITIAL_FORMS": "0"}

    added = admin_client.post("/admin/retention/customer/add/", {**form, **inline})
    renamed = admin_client.post(f"/admin/retention/customer/{other.pk}/change/", {**form, **inline})

    for response in (added, renamed):
        assert response.status_code == 200
        assert "Dit is het nummer van een klant die op " in response.text
        assert "allow_customer_again NL1234567" in response.text
    assert not Customer.objects.filter(external_id="NL1234567").exists()


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
    assert ErasedCustomerId.objects.get().key_id == key_fingerprint()


def test_migrate_warns_of_refusals_under_a_key_no_longer_configured(erased, settings):
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "the new key of this site, long enough 0123456789abcdef"

    without_fallback = erased_id_refusals_check(None, databases=["default"])
    without_databases = erased_id_refusals_check(None)
    settings.SECRET_KEY_FALLBACKS = [old_key]

    assert [message.id for message in without_fallback] == ["retention.W002"]
    assert "made under a secret key no longer configured: 1." in without_fallback[0].msg
    assert erased_id_refusals_check(None, databases=["default"]) == []
    assert without_databases == [], "only where the caller lets checks read the database"


def test_a_digest_is_the_hmac_the_readme_names(erased, settings):
    expected = salted_hmac("retention.erased-customer-id", "NL1234567", algorithm="sha256").hexdigest()

    assert ErasedCustomerId.objects.get().digest == erased_id_digest("NL1234567") == expected


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
    assert listing.status_code == 200 and '<td class="field-refuses_the_id">geweigerd</td>' in listing.text


@pytest.mark.parametrize("asked", [3, 60], ids=["fewer ids than refusals", "more ids than refusals"])
def test_ids_are_matched_whether_few_or_many_are_asked_about(monkeypatch, asked):
    monkeypatch.setattr("retention.selectors.erased_ids.DIGESTS_PER_QUERY", 2)
    for number in range(10):
        customer_erase(customer=CustomerFactory(external_id=f"NL{number:07d}"), requested_by="dpo")
    others = [f"NL{number:07d}" for number in range(100, 100 + asked - 2)]

    assert set(erased_ids_among(["NL0000003", "NL0000007", *others])) == {"NL0000003", "NL0000007"}


def test_an_id_refused_under_two_keys_is_kept_out_once_and_let_back_whole(erased, settings, admin_client):
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "the new key of this site, long enough 0123456789abcdef"
    # The old key forgotten for a while: the CRM's record is stored again, and the customer erased again.
    customers_upsert(records=[record("NL1234567")], source="crm")
    customer_erase(customer=Customer.objects.get(external_id="NL1234567"), requested_by="dpo", reference="AVG-18")
    settings.SECRET_KEY_FALLBACKS = [old_key]

    kept_out = customers_upsert(records=[record("NL1234567")], source="crm")
    listing = admin_client.get("/admin/retention/erasure/").text
    call_command("allow_customer_again", "NL1234567", stdout=io.StringIO())
    let_back = customers_upsert(records=[record("NL1234567")], source="crm")

    assert kept_out.erased == ["NL1234567"]
    assert listing.count('<td class="field-refuses_the_id">geweigerd</td>') == 2
    assert (let_back.created, let_back.erased) == (1, [])
    assert not ErasedCustomerId.objects.filter(allowed_at__isnull=True).exists()


def test_the_commands_take_a_number_pasted_with_spaces_around_it_and_refuse_an_empty_one():
    CustomerFactory(external_id="NL5550002")

    call_command("erase_customer", " NL5550002 ", "--no-input", stdout=io.StringIO())

    assert erased_ids_among(["NL5550002"])
    with pytest.raises(CommandError, match="give the customer's number, not an empty one"):
        call_command("erase_customer", "  ", "--no-input")


def test_a_refusal_under_a_key_that_returns_lapses_for_a_number_a_stored_customer_holds(
    erased, settings, admin_client, admin_user
):
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "the new key of this site, long enough 0123456789abcdef"
    admin_client.force_login(admin_user)  # a new key ends every session
    unseen = admin_client.get("/admin/retention/erasure/").text
    customers_upsert(records=[record("NL1234567")], source="crm")  # stored again: its refusal's key is missing
    settings.SECRET_KEY_FALLBACKS = [old_key]

    update = customers_upsert(records=[record("NL1234567", name="J. de Vries")], source="crm")

    assert "geweigerd onder een geheime sleutel die niet meer is ingesteld: weigert niets" in unseen
    assert (update.updated, update.erased) == (1, [])
    assert Customer.objects.get(external_id="NL1234567").display_name == "J. de Vries"
    assert ErasedCustomerId.objects.get().allowed_by == "the service: the number is a stored customer's again"


def test_letting_back_names_every_erasure_it_lifts(erased, settings):
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "the new key of this site, long enough 0123456789abcdef"
    customers_upsert(records=[record("NL1234567")], source="crm")
    customer_erase(customer=Customer.objects.get(external_id="NL1234567"), requested_by="dpo", reference="AVG-18")
    settings.SECRET_KEY_FALLBACKS = [old_key]
    out = io.StringIO()

    call_command("allow_customer_again", "NL1234567", stdout=out)

    assert (
        ", reference AVG-17; erased " in out.getvalue() and ", reference AVG-18) may be stored again" in out.getvalue()
    )
