import datetime as dt

import django.db.models.deletion
from django.db import migrations, models

DEFAULT_HOLD_DAYS = 14


def charge_and_hold_what_was_logged(apps, schema_editor):
    """Offers accepted before the team was stored on them spend the team they were counted for until now: the
    advice's, else the team of the agent who logged them. Offers made before holds were stored hold their cost
    from the advice they were made on, for the policy's hold from when they were made, so one made yesterday and
    answered tomorrow counts as one made today would."""
    DecisionAction = apps.get_model("retention", "DecisionAction")
    AgentProfile = apps.get_model("retention", "AgentProfile")
    PolicyConfig = apps.get_model("retention", "PolicyConfig")
    policy = PolicyConfig.objects.order_by("-version").first()
    hold_days = (policy.values or {}).get("offer_hold_days", DEFAULT_HOLD_DAYS) if policy else DEFAULT_HOLD_DAYS
    teams_of_agents = dict(AgentProfile.objects.values_list("user_id", "team_id"))
    logged = (
        DecisionAction.objects.filter(kind__in=["presented", "accepted"])
        .select_related("decision")
        .only("pk", "kind", "offer_code", "agent_id", "created_at", "decision__team_id", "decision__offers")
    )
    for action in logged.iterator(chunk_size=2000):
        team_id = action.decision.team_id or teams_of_agents.get(action.agent_id)
        fields = {"charged_team_id": team_id}
        if action.kind == "presented" and team_id is not None and hold_days > 0:
            offers = action.decision.offers or []
            cost = next((offer.get("cost_cents") or 0 for offer in offers if offer.get("code") == action.offer_code), 0)
            fields.update(held_cents=cost, held_until=action.created_at + dt.timedelta(days=hold_days))
        DecisionAction.objects.filter(pk=action.pk).update(**fields)


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
