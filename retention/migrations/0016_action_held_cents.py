import datetime as dt

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.utils import timezone

DEFAULT_HOLD_DAYS = 14


def charge_and_hold_what_was_logged(apps, schema_editor):
    """Offers made or accepted before the team was stored on them count for the team they were counted for until
    now: the advice's, else the team of the agent who logged them; a yes logged without an agent, the team that the
    offer was made for. Offers made within the policy's hold before this runs hold their cost from the advice they
    were made on, until the hold ends, so one made yesterday and answered tomorrow counts as one made today would;
    an older one's hold had ended, so it holds nothing.

    A few set-wise updates and one per agent, not one per row: the tables are locked while this runs."""
    if schema_editor is not None and schema_editor.connection.vendor == "postgresql":
        # A row updated twice in one transaction queues its deferred foreign-key checks, and PostgreSQL then refuses
        # the index this migration creates at its end ("pending trigger events"): check them as each update ends.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    DecisionAction = apps.get_model("retention", "DecisionAction")
    AgentProfile = apps.get_model("retention", "AgentProfile")
    PolicyConfig = apps.get_model("retention", "PolicyConfig")
    Decision = apps.get_model("retention", "Decision")
    logged = DecisionAction.objects.filter(kind__in=["presented", "accepted"], charged_team__isnull=True)
    advice_team = Decision.objects.filter(pk=OuterRef("decision_id")).values("team_id")[:1]
    logged.filter(decision__team__isnull=False).update(charged_team_id=Subquery(advice_team))
    for user_id, team_id in AgentProfile.objects.exclude(team=None).values_list("user_id", "team_id"):
        logged.filter(agent_id=user_id).update(charged_team_id=team_id)
    made_for = DecisionAction.objects.filter(
        decision_id=OuterRef("decision_id"),
        offer_code=OuterRef("offer_code"),
        kind="presented",
        created_at__lte=OuterRef("created_at"),
        charged_team__isnull=False,
    ).order_by("-created_at", "-pk")
    logged.filter(kind="accepted", agent_id=None).update(
        charged_team_id=Subquery(made_for.values("charged_team_id")[:1])
    )
    _hold_recent_offers(DecisionAction, PolicyConfig)


def _hold_recent_offers(DecisionAction, PolicyConfig):
    policy = PolicyConfig.objects.order_by("-version").first()
    hold_days = (policy.values or {}).get("offer_hold_days", DEFAULT_HOLD_DAYS) if policy else DEFAULT_HOLD_DAYS
    if hold_days <= 0:
        return
    hold = dt.timedelta(days=hold_days)
    recent = (
        DecisionAction.objects.filter(
            kind="presented", charged_team__isnull=False, held_until=None, created_at__gt=timezone.now() - hold
        )
        .select_related("decision")
        .only("pk", "offer_code", "created_at", "decision__offers")
    )
    held = []
    for action in recent.iterator(chunk_size=2000):
        offers = action.decision.offers or []
        cost = next((offer.get("cost_cents") or 0 for offer in offers if offer.get("code") == action.offer_code), 0)
        action.held_cents, action.held_until = cost, action.created_at + hold
        held.append(action)
    DecisionAction.objects.bulk_update(held, ["held_cents", "held_until"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0015_agent_keyboard_shortcuts"),
    ]

    operations = [
        migrations.AddField(
            model_name="decisionaction",
            name="charged_team",
            field=models.ForeignKey(
                blank=True,
                help_text="The team it spends.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="retention.team",
            ),
        ),
        migrations.AddField(
            model_name="decisionaction",
            name="held_cents",
            field=models.PositiveIntegerField(
                default=0,
                help_text="What an offer made holds of its team's monthly budget, in cents, until the customer "
                "answers it or the hold ends.",
            ),
        ),
        migrations.AddField(
            model_name="decisionaction",
            name="held_until",
            field=models.DateTimeField(
                blank=True,
                help_text="When the hold ends: the policy's offer_hold_days after the offer was made.",
                null=True,
            ),
        ),
        migrations.RunPython(charge_and_hold_what_was_logged, migrations.RunPython.noop),
    ]
