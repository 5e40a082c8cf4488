"""Input of the panel: which customer and channel to show, and one logged action."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from agents_ui import labels
from retention.models import Decision, DecisionAction


class PanelQueryForm(forms.Form):
    """The panel's GET parameters: a search (`q`), or a customer with an optional earlier decision."""

    q = forms.CharField(
        label=_("Customer number, name or phone"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    customer = forms.CharField(required=False, max_length=100)
    decision = forms.UUIDField(required=False)
    channel = forms.ChoiceField(
        label=_("Channel"),
        required=False,
        choices=[(channel, labels.CHANNELS[channel]) for channel in labels.AGENT_CHANNELS],
    )

    def clean_channel(self) -> str:
        return self.cleaned_data["channel"] or Decision.Channel.PHONE


class DecisionActionForm(forms.Form):
    """One action on a decision; whether it is allowed (override reason, authority) is the service's call."""

    kind = forms.ChoiceField(choices=DecisionAction.Kind.choices)
    offer_code = forms.CharField(required=False, max_length=50)
    override_reason = forms.ChoiceField(
        label=_("Why another offer than the recommended one?"),
        required=False,
        choices=[("", _("Choose a reason")), *labels.OVERRIDE_REASONS.items()],
    )
    idempotency_key = forms.CharField(required=False, max_length=100)

    def clean_idempotency_key(self) -> str | None:
        # An empty key means "not given": the stored column is unique, so "" would collide.
        return self.cleaned_data["idempotency_key"] or None
