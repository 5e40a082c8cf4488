from django.db import migrations, models


def hold_offers_made_before(apps, schema_editor):
    """Offers made before holds were stored hold their cost from the advice they were made on, so one made
    yesterday and answered tomorrow counts as one made today would."""
    DecisionAction = apps.get_model("retention", "DecisionAction")
    made = (
        DecisionAction.objects.filter(kind="presented")
        .select_related("decision")
        .only("pk", "offer_code", "decision__offers")
    )
    for action in made.iterator(chunk_size=2000):
        cost = next(
            (
                offer.get("cost_cents") or 0
                for offer in action.decision.offers or []
                if offer.get("code") == action.offer_code
            ),
            0,
        )
        if cost:
            DecisionAction.objects.filter(pk=action.pk).update(held_cents=cost)


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0015_agent_keyboard_shortcuts"),
    ]

    operations = [
        migrations.AddField(
            model_name="decisionaction",
            name="held_cents",
            field=models.PositiveIntegerField(
                default=0,
                help_text="What an offer made holds of its team's monthly budget, in cents, until the customer "
                "answers it or the policy's offer_hold_days pass.",
            ),
        ),
        migrations.RunPython(hold_offers_made_before, migrations.RunPython.noop),
    ]
