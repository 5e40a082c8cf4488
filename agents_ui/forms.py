"""Input of the panel: which customer and channel to show, and one logged action."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from agents_ui import labels
from retention.models import Decision, DecisionAction


class PanelSearchForm(forms.Form):
    """The panel's search: what the agent typed, and the channel of the call the customer is then opened on."""

    q = forms.CharField(
        label=_("Customer number, name or phone"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )
    channel = forms.ChoiceField(
        label=_("Channel"),
        required=False,
        choices=[(channel, labels.CHANNELS[channel]) for channel in labels.AGENT_CHANNELS],
    )

    def clean_channel(self) -> str:
        return self.cleaned_data["channel"] or Decision.Channel.PHONE


class PanelQueryForm(PanelSearchForm):
    """The panel's GET parameters: a customer with an optional earlier decision, or `new` advice where the panel
    would otherwise show the advice of this call again; or a search, kept (`search`) or in the address (`q`), as
    links made for the panel may carry one."""

    customer = forms.CharField(required=False, max_length=100)
    decision = forms.UUIDField(required=False)
    # A search the panel's form posted, by the token it is kept under in the agent's session.
    search = forms.CharField(required=False, max_length=32)
    # New advice even when this agent opened the customer on this channel a moment ago (see views.SAME_CALL).
    # Read as sent ("1", "0", "true", "false"): a checkbox widget would take any value but "false" for yes.
    new = forms.BooleanField(required=False, widget=forms.HiddenInput)


class DecisionRefreshForm(forms.Form):
    """How many actions of the advice's log the panel shows; the refresh answers only when the log has more."""

    shown = forms.IntegerField(min_value=0)


# The stored key has room for 100 characters, "panel:<user id>:" included.
MAX_PANEL_KEY_LENGTH = 80


class DecisionActionForm(forms.Form):
    """One action on a decision; whether it is allowed (override reason, authority) is the service's call."""

    kind = forms.ChoiceField(choices=DecisionAction.Kind.choices)
    offer_code = forms.CharField(required=False, max_length=50)
    override_reason = forms.ChoiceField(
        label=_("Why another offer than the recommended one?"),
        required=False,
        choices=[("", _("Choose a reason")), *labels.OVERRIDE_REASONS.items()],
    )
    idempotency_key = forms.CharField(required=False, max_length=MAX_PANEL_KEY_LENGTH)

    def clean_idempotency_key(self) -> str | None:
        # An empty key means "not given": the stored column is unique, so "" would collide.
        return self.cleaned_data["idempotency_key"] or None

    def action_values(self, agent) -> dict:
        """The action for the decision service, its key in the panel's own namespace per agent: a key typed to
        look like an API client's could otherwise take that client's next outcome."""
        values = dict(self.cleaned_data)
        if values["idempotency_key"]:
            values["idempotency_key"] = f"panel:{agent.pk}:{values['idempotency_key']}"
        return values
