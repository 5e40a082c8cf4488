"""A customer's personal data erased at their request, and everything held on them exported for a request to see it."""

import importlib
import io
import json

import pytest
from django.apps import apps as django_apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from retention.models import (
    ApiClient,
    Contract,
    Customer,
    Decision,
    DecisionAction,
    Erasure,
    ProtectedAttributes,
    ScoringJob,
    ServiceEvent,
)
from retention.selectors.api import customer_count, customer_with_latest_risk
from retention.selectors.budget import team_budget_status
from retention.selectors.customer_data import customer_data_export
from retention.selectors.history import labelled_history_frames
from retention.selectors.panel import customer_get, customer_search
from retention.services.decisions import decision_action_record
from retention.services.erasure import customer_erase
from tests.agents_ui.decisions import stored_decision
from tests.conftest import api_client_with
from tests.factories import ContractFactory, CustomerFactory, RenewalResultFactory, ServiceEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(agent):
    """A customer with everything the service holds on one: history, protected values, advice acted on, a result."""
    customer = CustomerFactory(
        external_id="NL1234567", display_name="Jan de Vries", phone="06-12345678", attributes={"loyalty": "gold"}
    )
    ProtectedAttributes.objects.create(customer=customer, values={"gender": "M", "age_band": "vijfenzestig-plus"})
    ContractFactory(customer=customer)
    ServiceEventFactory(customer=customer, note="Klant belde boos over storing")
    decision = stored_decision(
        customer=customer,
        agent=agent,
        features={"tenure_months": 30, "region": "Utrecht"},
        reason="wil opzeggen",
        idempotency_key="api:1:advies-NL1234567",
        best_tariff={"code": "int-tv", "name": "Internet + TV", "products": ["internet", "tv"]},
    )
    DecisionAction.objects.create(
        decision=decision,
        agent=agent,
        kind="presented",
        offer_code="loyal-10",
        idempotency_key="api:1:NL1234567-2026-11-25-aanbod",
    )
    DecisionAction.objects.create(
        decision=decision, agent=agent, kind="accepted", offer_code="loyal-10", cost_cents=6_600
    )
    RenewalResultFactory(customer=customer)
    LogEntry.objects.create(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk),
        object_repr=str(customer), action_flag=CHANGE, change_message="[]", user=agent,
    )  # fmt: skip
    return customer


def test_erasure_leaves_nothing_that_describes_the_person(customer):
    erasure = customer_erase(customer=customer, requested_by="dpo", reference="AVG-2026-17")

    customer.refresh_from_db()
    assert customer.external_id.startswith("erased-") and len(customer.external_id) == len("erased-") + 32
    assert (customer.display_name, customer.phone, customer.region) == ("", "", "")
    assert (customer.signup_date, customer.products, customer.attributes) == (None, [], {})
    assert customer.erased_at == erasure.erased_at or customer.erased_at is not None
    assert not ProtectedAttributes.objects.exists()
    assert not Contract.objects.exists() and not ServiceEvent.objects.exists()
    decision = Decision.objects.get()
    assert (decision.features, decision.reasons, decision.reason, decision.best_tariff) == ({}, [], "", None)
    assert LogEntry.objects.get().object_repr == "erased"
    assert erasure.removed == {
        "contracts": 1, "service_events": 1, "protected_attributes": 1, "decision_snapshots": 1,
        "idempotency_keys": 2, "admin_history": 1, "scoring_job_rows": 0,
    }  # fmt: skip
    assert decision.idempotency_key is None
    assert not DecisionAction.objects.filter(idempotency_key__isnull=False).exists()
    assert (erasure.requested_by, erasure.reference) == ("dpo", "AVG-2026-17")
    stored = json.dumps(customer_data_export(customer=customer))
    # Traces no timestamp or id can hold: "65+" matched a time's last digits and offset ("…44.123465+00:00").
    for trace in ("NL1234567", "Jan de Vries", "12345678", "gold", "vijfenzestig", "boos", "wil opzeggen", "Utrecht"):
        assert trace not in stored


def test_the_log_keeps_the_advice_the_offers_the_outcomes_and_the_budget_spent(customer, agent):
    spent = team_budget_status(team=agent.agent_profile.team).spent_cents

    customer_erase(customer=customer, requested_by="dpo")

    decision = Decision.objects.get()
    assert decision.churn_probability == 0.64 and decision.recommended_offer_code == "loyal-10"
    assert [offer["code"] for offer in decision.offers] == ["loyal-10", "speed-up", "half-price"]
    assert list(decision.actions.values_list("kind", flat=True)) == ["presented", "accepted"]
    assert customer.renewal_results.count() == 1
    assert team_budget_status(team=agent.agent_profile.team).spent_cents == spent == 6_600


def test_an_erased_customer_is_found_nowhere_and_trains_no_model(customer):
    other = CustomerFactory(external_id="NL7654321", display_name="Piet Jansen")  # a drawn name may be a de Vries
    RenewalResultFactory(customer=other)
    customer_erase(customer=customer, requested_by="dpo")
    customer.refresh_from_db()

    assert customer_search(query="de Vries") == [] and customer_search(query="erased") == []
    assert customer_get(external_id=customer.external_id) is None
    assert customer_with_latest_risk(external_id=customer.external_id) is None
    assert customer_count() == 1
    rows, _, _, labels = labelled_history_frames()
    assert list(rows["key"]) == [other.pk] and len(labels) == 1


def test_a_second_erasure_is_refused_and_changes_nothing(customer):
    customer_erase(customer=customer, requested_by="dpo")

    with pytest.raises(ValidationError, match="already erased"):
        customer_erase(customer=customer, requested_by="dpo")
    assert Erasure.objects.count() == 1


def test_an_erasure_says_who_had_it_done(customer):
    with pytest.raises(ValidationError, match="who had the erasure done"):
        customer_erase(customer=customer, requested_by="  ")
    assert not Erasure.objects.exists()


# --- the commands ---------------------------------------------------------------------------------------------


def test_the_erase_command_asks_first_and_erases_only_on_yes(customer, monkeypatch):
    prompts = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or "n")
    with pytest.raises(CommandError, match="nothing erased: answer y or yes to erase"):
        call_command("erase_customer", "NL1234567")
    assert not Erasure.objects.exists()
    assert prompts == ["Erase the personal data of NL1234567 (Jan de Vries)? This cannot be undone. [y/N] "]

    monkeypatch.setattr("builtins.input", lambda prompt: "Yes")
    out = io.StringIO()
    call_command("erase_customer", "NL1234567", "--reference", "T-1", stdout=out)

    assert "erased the personal data of NL1234567: 1 contracts, 1 service events" in out.getvalue()
    erasure = Erasure.objects.get()
    assert erasure.reference == "T-1" and erasure.requested_by.startswith("command line (")


def test_the_erase_command_without_questions_and_for_an_unknown_number(customer):
    call_command("erase_customer", "NL1234567", "--no-input", stdout=io.StringIO())
    assert Erasure.objects.count() == 1

    with pytest.raises(CommandError, match="no customer with external id 'NL1234567'"):
        call_command("erase_customer", "NL1234567", "--no-input")


def test_the_export_holds_everything_on_the_customer(customer, tmp_path):
    out = tmp_path / "export.json"

    call_command("export_customer", "NL1234567", "--out", str(out), stdout=io.StringIO())

    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["customer"]["display_name"] == "Jan de Vries" and data["customer"]["attributes"] == {"loyalty": "gold"}
    assert data["protected"] == {"gender": "M", "age_band": "vijfenzestig-plus"}
    assert len(data["contracts"]) == 1 and data["service_events"][0]["note"] == "Klant belde boos over storing"
    (advice,) = data["advice"]
    assert advice["reason"] == "wil opzeggen" and advice["reasons"][0] == {"nl": "2 klachten", "en": "2 complaints"}
    assert advice["offers"][0]["title"] == {"nl": "Loyaliteitskorting 10%", "en": "Loyalty discount 10%"}
    assert "propensity" not in advice["offers"][0]
    assert [(a["kind"], a["logged_by"]) for a in advice["actions"]] == [("presented", "agent"), ("accepted", "agent")]
    assert "agent" not in json.dumps(advice["actions"]).replace('"agent"', "")  # roles, not names
    assert data["renewal_results"][0]["result"] == "renewed"
    assert "leeftijd of geslacht" in data["how_advice_is_made"]["nl"]
    assert data["scoring_jobs_naming_them"] == []


def test_the_export_lists_the_scoring_jobs_that_asked_about_the_customer(customer):
    client = ApiClient.objects.create(name="crm", scopes=["score"], token_prefix="x", token_hash="2" * 64)
    asked = ScoringJob.objects.create(api_client=client, customer_ids=["NL7654321", "NL1234567"], status="done")
    ScoringJob.objects.create(api_client=client, customer_ids=["NL7654321"], status="done")
    ScoringJob.objects.create(api_client=client, customer_ids=None, status="queued")

    jobs = customer_data_export(customer=customer)["scoring_jobs_naming_them"]

    assert [(job["id"], job["status"]) for job in jobs] == [(str(asked.pk), "done")]


def test_the_export_never_writes_over_a_file_and_knows_no_erased_customer(customer, tmp_path):
    existing = tmp_path / "export.json"
    existing.write_text("earlier")
    with pytest.raises(CommandError, match="exists"):
        call_command("export_customer", "NL1234567", "--out", str(existing))
    assert existing.read_text() == "earlier"

    customer_erase(customer=customer, requested_by="dpo")
    with pytest.raises(CommandError, match="no customer with external id 'NL1234567'"):
        call_command("export_customer", "NL1234567")


# --- the API --------------------------------------------------------------------------------------------------


def test_the_api_erases_with_the_erase_scope_only(customer):
    without, _ = api_client_with(["read", "write_customers"])
    assert without.delete("/api/v1/customers/NL1234567/").status_code == 403
    assert not Erasure.objects.exists()
    client, record = api_client_with(["read", "erase_customers"])

    response = client.delete("/api/v1/customers/NL1234567/?reference=AVG-17")

    assert response.status_code == 200
    assert Erasure.objects.get().reference == "AVG-17"
    assert response.json()["erased"] is True and response.json()["removed"]["contracts"] == 1
    assert Erasure.objects.get().requested_by == f"API client {record.name}"
    assert client.get("/api/v1/customers/NL1234567/").status_code == 404
    assert client.delete("/api/v1/customers/NL1234567/").status_code == 404


def test_a_client_bound_to_teams_may_not_erase(customer, team):
    client, record = api_client_with(["read", "erase_customers"])
    record.teams.add(team)

    response = client.delete("/api/v1/customers/NL1234567/")

    assert response.status_code == 403
    assert "every team" in response.json()["error"]["message"]
    assert not Erasure.objects.exists()


def test_the_erase_command_where_no_one_can_answer_says_to_pass_no_input(customer, monkeypatch):
    def no_terminal(prompt):
        raise EOFError

    monkeypatch.setattr("builtins.input", no_terminal)
    with pytest.raises(CommandError, match="no one could confirm it here; run it with --no-input"):
        call_command("erase_customer", "NL1234567")
    assert not Erasure.objects.exists()


@pytest.mark.parametrize(("out", "message"), [("missing/export.json", "does not exist"), ("", "is a directory")])
def test_the_export_refuses_a_place_it_cannot_write_before_reading_anything(customer, tmp_path, out, message):
    with pytest.raises(CommandError, match=message):
        call_command("export_customer", "NL1234567", "--out", str(tmp_path / out) if out else str(tmp_path))


def test_a_decision_stored_before_its_fee_had_a_field_keeps_what_values_its_renewal(customer):
    from retention.selectors.outcome_log import logged_outcomes

    Decision.objects.update(renewal_fee_cents=None, features={"monthly_fee": 54.95})
    RenewalResultFactory(customer=customer, date=timezone.localdate())  # labels the decision
    fee_kept = importlib.import_module("retention.migrations.0018_decision_renewal_fee_kept")
    fee_kept.fee_from_the_features(django_apps, schema_editor=None)

    customer_erase(customer=customer, requested_by="dpo")

    decision = Decision.objects.get()
    assert (decision.features, decision.renewal_fee_cents) == ({}, 5_495)
    assert list(logged_outcomes()["renewal_fee_cents"]) == [5_495]


# --- what an erasure leaves no way back into ----------------------------------------------------------------


def erased(customer) -> str:
    customer_erase(customer=customer, requested_by="dpo")
    customer.refresh_from_db()
    return customer.external_id


def test_nothing_about_the_person_can_be_written_back_under_the_erased_number(customer, agent):
    number = erased(customer)
    client, _ = api_client_with(["read", "score", "write_customers", "write_outcomes"])

    upsert = client.post(
        "/api/v1/customers/bulk/", {"customers": [{"external_id": number, "display_name": "Jan"}]}, format="json"
    )
    renewal = client.post(
        "/api/v1/renewals/", {"customer_id": number, "result": "churned", "date": "2026-01-05"}, format="json"
    )
    scores = client.post("/api/v1/scores/", {"customer_ids": [number]}, format="json")

    assert upsert.status_code == 400 and "may not start with 'erased-'" in json.dumps(upsert.json())
    assert renewal.status_code in (400, 422) and "no customer with external id" in json.dumps(renewal.json())
    assert scores.status_code in (400, 404, 422), scores.content
    customer.refresh_from_db()
    assert customer.display_name == "" and customer.renewal_results.count() == 1


def test_nothing_more_is_logged_on_an_erased_customers_advice(customer, agent):
    decision = Decision.objects.get()
    erased(customer)

    with pytest.raises(ValidationError, match="erased at their request"):
        decision_action_record(decision=decision, agent=agent, kind="declined", offer_code="loyal-10")
    assert decision.actions.count() == 2


def test_the_admin_deletes_no_customer_a_customer_leaves_by_erasure(customer, admin_client):
    # A deleted row would leave the decision log naming them and let the CRM store them again.
    page = admin_client.get(f"/admin/retention/customer/{customer.pk}/delete/")

    assert page.status_code == 403
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_the_admin_cannot_change_or_delete_an_erased_customer(customer, admin_client):
    url = f"/admin/retention/customer/{customer.pk}/change/"
    assert admin_client.get(url).status_code == 200 and b'name="display_name"' in admin_client.get(url).content
    erased(customer)

    page = admin_client.get(url)
    assert page.status_code == 200 and b'name="display_name"' not in page.content
    assert admin_client.post(url, {"display_name": "Jan"}).status_code == 403


def test_the_admin_adds_no_event_or_protected_values_to_an_erased_customer(customer, admin_client):
    erased(customer)
    event = {"customer": customer.pk, "kind": "complaint", "occurred_at_0": "2026-11-01", "occurred_at_1": "10:00",
             "note": "Jan de Vries klaagt, tel 0612345678"}  # fmt: skip

    added_event = admin_client.post("/admin/retention/serviceevent/add/", event)
    added_values = admin_client.post(
        "/admin/retention/protectedattributes/add/", {"customer": customer.pk, "values": '{"gender": "F"}'}
    )

    for page in (added_event, added_values):
        assert page.status_code == 200 and b"op hun verzoek gewist: er mag niets worden toegevoegd" in page.content
    assert not ServiceEvent.objects.filter(customer=customer).exists()
    assert not ProtectedAttributes.objects.filter(customer=customer).exists()
    living = CustomerFactory(external_id="NL7654321")
    assert admin_client.post("/admin/retention/serviceevent/add/", {**event, "customer": living.pk}).status_code == 302


def test_stored_scoring_results_lose_the_customers_rows_in_place(customer, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    other = CustomerFactory(external_id="NL7654321")
    client = ApiClient.objects.create(name="crm", scopes=["score"], token_prefix="x", token_hash="1" * 64)
    folder = tmp_path / "scoring-jobs"
    folder.mkdir()
    job = ScoringJob.objects.create(api_client=client, customer_ids=["NL1234567", other.external_id], status="done")
    (folder / f"{job.pk}.csv").write_text(
        "external_id,churn_probability,risk_band\nNL1234567,0.354091,medium\nNL7654321,0.1,low\n"
    )
    ScoringJob.objects.filter(pk=job.pk).update(result_file=f"scoring-jobs/{job.pk}.csv")

    erasure = customer_erase(customer=customer, requested_by="dpo")

    assert erasure.removed["scoring_job_rows"] == 1
    assert (folder / f"{job.pk}.csv").read_text() == "external_id,churn_probability,risk_band\n,,\nNL7654321,0.1,low\n"
    assert ScoringJob.objects.get(pk=job.pk).customer_ids == ["", "NL7654321"]


def test_a_reference_too_long_or_a_misspelt_parameter_erases_nothing(customer):
    client, _ = api_client_with(["read", "erase_customers"])

    too_long = client.delete(f"/api/v1/customers/NL1234567/?reference={'x' * 101}")
    misspelt = client.delete("/api/v1/customers/NL1234567/?ref=T-1")
    with pytest.raises(CommandError, match="longer than 100 characters"):
        call_command("erase_customer", "NL1234567", "--no-input", "--reference", "x" * 101)

    assert too_long.status_code == 400 and "longer than 100 characters" in json.dumps(too_long.json())
    assert misspelt.status_code == 400 and "ref" in misspelt.json()["error"]["fields"]
    assert not Erasure.objects.exists()
    done = client.delete("/api/v1/customers/NL1234567/?reference=T-1")
    assert done.json()["reference"] == "T-1"


def test_the_export_holds_the_features_and_override_reasons_and_only_its_owner_may_read_it(customer, tmp_path):
    out = tmp_path / "export.json"
    call_command("export_customer", "NL1234567", "--out", str(out), stdout=io.StringIO())

    (advice,) = json.loads(out.read_text(encoding="utf-8"))["advice"]
    assert advice["features"] == {"tenure_months": 30, "region": "Utrecht"}
    assert [action["override_reason"] for action in advice["actions"]] == ["", ""]
    assert "expected_net_value_cents" not in advice["offers"][0]
    assert out.stat().st_mode & 0o777 == 0o600
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(CommandError, match="exists"):
        call_command("export_customer", "NL1234567", "--out", str(link))
