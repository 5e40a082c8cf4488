from decimal import Decimal

from django.db import migrations


def fee_from_the_features(apps, schema_editor):
    """Decisions stored before the fee their offers were priced on had a field of its own carry it among their
    features (`monthly_fee`, in euros): it is kept in the field, so valuing a renewal and erasing a customer's
    features need no second way of reading it. Amounts go through Decimal: money is never a float here."""
    Decision = apps.get_model("retention", "Decision")
    unpriced = Decision.objects.filter(renewal_fee_cents__isnull=True).only("pk", "features")
    for decision in unpriced.iterator(chunk_size=2000):
        monthly_fee = (decision.features or {}).get("monthly_fee")
        if monthly_fee is None:
            continue  # no fee was known: nothing was priced on one
        cents = (Decimal(str(monthly_fee)) * 100).to_integral_value()
        Decision.objects.filter(pk=decision.pk).update(renewal_fee_cents=int(cents))


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0017_offer_commitment_months"),
    ]

    operations = [
        migrations.RunPython(fee_from_the_features, migrations.RunPython.noop),
    ]
