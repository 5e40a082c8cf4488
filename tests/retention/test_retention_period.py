"""Former customers' data erased once they have been gone longer than the retention period, and nobody else's."""

import datetime as dt
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from retention.models import Customer, Erasure
from retention.selectors.retention_period import former_customers_due
from retention.services.erasure import RETENTION_PERIOD, former_customers_expire
from retention.tasks import former_customers_expire_task
from tests.agents_ui.decisions import stored_decision
from tests.factories import ContractFactory, CustomerFactory, RenewalResultFactory, ServiceEventFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()  # the commands count from the day they run
YEAR = 365


def days_before(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


def moment(days: int) -> dt.datetime:
    return dt.datetime.combine(days_before(days), dt.time(12), tzinfo=dt.UTC)


def former(external_id: str, *, left_days_ago: int) -> Customer:
    """A customer whose contract ended when they left, with nothing recorded of them since."""
    customer = CustomerFactory(external_id=external_id)
    ContractFactory(
        customer=customer,
        status="ended",
        start_date=days_before(left_days_ago + YEAR),
        end_date=days_before(left_days_ago),
    )
    RenewalResultFactory(customer=customer, result="churned", date=days_before(left_days_ago))
    return customer


@pytest.fixture
def base(agent):
    """Who is due after a year: only `gone`. Everyone else left too recently, came back or was heard of since."""
    people = {
        "gone": former("GONE", left_days_ago=400),
        "left_lately": former("LATELY", left_days_ago=200),
        "came_back": former("BACK", left_days_ago=600),
        "called_since": former("CALLED", left_days_ago=500),
        "advised_since": former("ADVISED", left_days_ago=500),
        "active_again": former("ACTIVE", left_days_ago=500),
        "stayed": CustomerFactory(external_id="STAYED"),
    }
    RenewalResultFactory(customer=people["came_back"], result="renewed", date=days_before(30))
    ServiceEventFactory(customer=people["called_since"], occurred_at=moment(40))
    stored_decision(customer=people["advised_since"], agent=agent)
    ContractFactory(customer=people["active_again"], start_date=days_before(20), end_date=days_before(-345))
    RenewalResultFactory(customer=people["stayed"], result="renewed", date=days_before(700))
    # Nothing was changed by the CRM in the period, except where a test says so.
    Customer.objects.update(updated_at=moment(450))
    return people


def test_only_a_customer_gone_longer_than_the_period_and_not_heard_of_since_is_due(base):
    assert [c.external_id for c in former_customers_due(days=YEAR, today=TODAY)] == ["GONE"]
    assert {c.external_id for c in former_customers_due(days=150, today=TODAY)} == {"GONE", "LATELY"}


def test_the_crm_importing_or_changing_their_record_lately_does_not_keep_them(base):
    # A CRM importing its backlog of customers gone for years, or correcting one, says nothing of a return.
    Customer.objects.filter(external_id="GONE").update(updated_at=timezone.now())

    assert [c.external_id for c in former_customers_due(days=YEAR, today=TODAY)] == ["GONE"]


def test_each_is_erased_as_on_request_and_recorded_as_done_by_the_period(base):
    (erasure,) = former_customers_expire(days=YEAR, today=TODAY)

    gone = base["gone"]
    gone.refresh_from_db()
    assert gone.erased_at is not None and gone.display_name == "" and not gone.contracts.exists()
    assert erasure.requested_by == RETENTION_PERIOD and erasure.reference == "left over 365 days ago"
    assert Customer.objects.filter(erased_at__isnull=True).count() == 6
    assert former_customers_expire(days=YEAR, today=TODAY) == []
    assert not hasattr(erasure, "refusal"), "one who signs up again later is stored as anyone new"


def test_the_command_counts_first_and_erases_when_told(base):
    out = io.StringIO()
    call_command("expire_former_customers", "--days", "365", "--dry-run", stdout=out)
    assert "1 former customer(s) gone over 365 days would be erased" in out.getvalue()
    assert not Erasure.objects.exists()

    with pytest.raises(CommandError, match="say how long former customers are kept"):
        call_command("expire_former_customers", stdout=io.StringIO())
    for days in ("0", "36501", "99999999999999999999"):
        with pytest.raises(CommandError, match="--days must be 1 to 36,500"):
            call_command("expire_former_customers", "--days", days, stdout=io.StringIO())


def test_the_nightly_task_does_nothing_until_a_period_is_set(base, settings, monkeypatch):
    monkeypatch.setattr(timezone, "localdate", lambda *args: TODAY)
    settings.FORMER_CUSTOMER_DAYS = 0
    assert former_customers_expire_task() == 0 and not Erasure.objects.exists()

    settings.FORMER_CUSTOMER_DAYS = YEAR
    assert former_customers_expire_task() == 1
    assert Erasure.objects.get().requested_by == RETENTION_PERIOD


def test_a_customer_a_file_made_with_a_contract_still_marked_active_is_due_once_gone(base):
    filed = CustomerFactory(external_id="FILED")
    ContractFactory(customer=filed, start_date=None, end_date=None)  # all a file's monthly fee can say
    RenewalResultFactory(customer=filed, result="churned", date=days_before(400))
    Customer.objects.filter(pk=filed.pk).update(updated_at=moment(450))

    assert [c.external_id for c in former_customers_due(days=YEAR, today=TODAY)] == ["GONE", "FILED"]


def test_a_period_past_a_century_is_refused(base):
    with pytest.raises(ValidationError, match="1 to 36,500 days"):
        former_customers_expire(days=36_501, today=TODAY)


def test_an_erasure_names_its_time_in_the_sites_zone_and_says_which(base):
    (erasure,) = former_customers_expire(days=YEAR, today=TODAY)
    Erasure.objects.filter(pk=erasure.pk).update(erased_at=dt.datetime(2026, 7, 1, 10, 30, tzinfo=dt.UTC))
    erasure.refresh_from_db()

    assert str(erasure).endswith(" at 2026-07-01 12:30 CEST")


def test_the_period_begins_at_midnight_in_amsterdam_not_in_utc(db):
    """Heard from in the first hour of the period's first day, local time (the evening before, in UTC): kept."""
    first_day = days_before(YEAR)
    local_half_past_midnight = timezone.make_aware(dt.datetime.combine(first_day, dt.time(0, 30)))
    heard_from = former("EARLY", left_days_ago=400)
    ServiceEventFactory(customer=heard_from, occurred_at=local_half_past_midnight)
    ServiceEventFactory(customer=former("LATE", left_days_ago=400), occurred_at=local_half_past_midnight - AN_HOUR)

    due = {customer.external_id for customer in former_customers_due(days=YEAR, today=TODAY)}

    assert due == {"LATE"}


AN_HOUR = dt.timedelta(hours=1)
