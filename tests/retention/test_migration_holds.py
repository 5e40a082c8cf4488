"""Migration 0016 run over a log that has rows, as an upgrade runs it, on the database the suite runs on (CI runs
it on PostgreSQL too): there, a row its backfill updates twice once left deferred foreign-key checks pending, and
PostgreSQL refused the index the migration creates at its end."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from retention.models import DecisionAction
from tests.agents_ui.decisions import stored_decision
from tests.factories import CustomerFactory

BEFORE_HOLDS = ("retention", "0015_agent_keyboard_shortcuts")


def migrate_to(*targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(list(targets))


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_over_logged_offers_charges_their_team_and_holds_the_recent_ones(agent):
    decision = stored_decision(customer=CustomerFactory(), agent=agent)
    recent = DecisionAction.objects.create(decision=decision, kind="presented", offer_code="loyal-10", channel="phone")
    old = DecisionAction.objects.create(decision=decision, kind="presented", offer_code="speed-up", channel="phone")
    DecisionAction.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=20))
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()

    migrate_to(BEFORE_HOLDS)
    try:
        migrate_to(*latest)
    finally:
        migrate_to(*latest)  # whatever happened, the next test finds the schema it expects

    recent.refresh_from_db()
    old.refresh_from_db()
    assert (recent.charged_team, recent.held_cents > 0) == (decision.team, True)
    assert (old.charged_team, old.held_cents, old.held_until) == (decision.team, 0, None)
