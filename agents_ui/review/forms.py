"""The GET filter forms of the review pages. Dates are local calendar days, both included."""

from __future__ import annotations

import datetime as dt
import re

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from agents_ui import labels
from agents_ui.presenters import in_language
from agents_ui.review.access import ReviewScope
from agents_ui.review.selectors import ESCALATED
from retention.models import Offer, Team
from retention.selectors.budget import period_bounds
from retention.selectors.fairness import Outcome

DEFAULT_PERIOD_DAYS = 90


CHECKBOX_ON = frozenset({"on", "1", "true"})
CHECKBOX_OFF = frozenset({"", "0", "false", "off"})


class _CheckboxAsSent(forms.CheckboxInput):
    """Hands the field the word sent, not Django's reading of it (any word but "false" is on)."""

    def __init__(self, attrs=None):
        super().__init__(attrs, check_test=lambda value: value is True or str(value).strip().lower() in CHECKBOX_ON)

    def value_from_datadict(self, data, files, name):
        return data.get(name)


class CheckboxFilter(forms.BooleanField):
    """A filter's checkbox, read from the address: on as a browser sends it ("on"), or as a link may ("1", "true");
    off when absent or "0", "false", "off". Any other word is refused, where Django's own field reads it as on."""

    widget = _CheckboxAsSent
    ON = CHECKBOX_ON
    OFF = CHECKBOX_OFF

    def to_python(self, value):
        if isinstance(value, bool) or value is None:
            return bool(value)
        word = str(value).strip().lower()
        if word in self.ON:
            return True
        if word in self.OFF:
            return False
        raise forms.ValidationError(_("Tick the box or leave it empty."), code="invalid")


PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50
OUTCOME_CHOICES = [
    (Outcome.ACCEPTED, _("Accepted")),
    (Outcome.DECLINED, _("Declined")),
    (Outcome.OPEN, _("Offer made, no final answer")),
    (Outcome.NO_OFFER, _("No offer made")),
    (ESCALATED, _("Escalated")),
]


ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits: \d takes any script's


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self):
        super().__init__(format="%Y-%m-%d")

    def format_value(self, value):
        # A date input shows nothing but YYYY-MM-DD, and the browser complains of anything else: a day typed
        # otherwise into the address is left out of the field, beside the error that names the form to use.
        if isinstance(value, str) and not ISO_DAY.fullmatch(value.strip()):
            return None
        return super().format_value(value)


class IsoDateField(forms.DateField):
    """A day written YYYY-MM-DD only, as the API takes it: the date input can show no other form, so a day read
    from 26-11-2026 would filter by a date the form does not show."""

    input_formats = ["%Y-%m-%d"]
    default_error_messages = {"invalid": _("Enter the date as YYYY-MM-DD, e.g. 2026-11-26.")}

    def __init__(self, **kwargs):
        super().__init__(widget=DateInput(), **kwargs)

    def to_python(self, value):
        if isinstance(value, str) and value.strip() and not ISO_DAY.fullmatch(value.strip()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class TeamChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, team: Team) -> str:
        return team.name


class AgentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user) -> str:
        return user.get_full_name() or user.get_username()


class TeamForm(forms.Form):
    """For reviewers of every team, one team to look at; a team lead sees their own team only."""

    team = TeamChoiceField(label=_("Team"), queryset=Team.objects.none(), required=False, empty_label=_("All teams"))

    def __init__(self, data, *, scope: ReviewScope, **kwargs):
        super().__init__(data, **kwargs)
        self.scope = scope
        if scope.all_teams:
            self.fields["team"].queryset = scope.teams()
        else:
            del self.fields["team"]

    def clean(self) -> dict:
        cleaned = super().clean()
        if not self.scope.all_teams:
            self._refuse_another_team()
        return cleaned

    def _refuse_another_team(self) -> None:
        """A team lead has no team field, but an address may still name a team: their own (or none) is what they
        see anyway; another is refused aloud rather than ignored, so a lead never reads their own figures as
        another team's."""
        asked = (self.data.get("team") or "").strip()
        if asked and asked not in {str(team_id) for team_id in self.scope.team_ids}:
            message = _("You see your own team's figures only; this address asks for another team (team=%(team)s).")
            self.add_error(None, forms.ValidationError(message, code="other_team", params={"team": asked}))

    def team_ids(self) -> list[int] | None:
        """The teams to read: the chosen one, else every team in scope (None: all teams and decisions without one)."""
        team = self.cleaned_data.get("team")
        if team is not None:
            return [team.pk]
        return None if self.scope.all_teams else sorted(self.scope.team_ids)

    def teams(self):
        team = self.cleaned_data.get("team")
        return [team] if team is not None else self.scope.teams()


class PeriodForm(TeamForm):
    since = IsoDateField(label=_("From"), required=False)
    until = IsoDateField(label=_("To"), required=False)
    field_order = ("since", "until", "team")

    def clean(self) -> dict:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            raise forms.ValidationError(_("The end date is before the start date."), code="period")
        return cleaned

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        return period_bounds(self.cleaned_data["since"], self.cleaned_data["until"])


def with_default_period(data, *, days: int = DEFAULT_PERIOD_DAYS, today: dt.date | None = None):
    """The query with the last `days` days as its period when it names no period at all."""
    if data.get("since") or data.get("until"):
        return data
    today = today or timezone.localdate()
    data = data.copy()
    data["since"], data["until"] = (today - dt.timedelta(days=days - 1)).isoformat(), today.isoformat()
    return data


class LogFilterForm(PeriodForm):
    agent = AgentChoiceField(
        label=_("Agent"), queryset=get_user_model().objects.none(), required=False, empty_label=_("All agents")
    )
    offer = forms.ChoiceField(label=_("Offer, recommended or made"), required=False)
    outcome = forms.ChoiceField(label=_("Outcome"), required=False, choices=[("", _("Any")), *OUTCOME_CHOICES])
    risk_band = forms.ChoiceField(label=_("Risk"), required=False, choices=[("", _("Any")), *labels.RISK_BANDS.items()])
    overrides_only = CheckboxFilter(label=_("Overrides only"), required=False)
    explored_only = CheckboxFilter(label=_("Explored only"), required=False)
    per_page = forms.TypedChoiceField(
        label=_("Rows per page"), coerce=int, choices=[(size, size) for size in PAGE_SIZES]
    )

    def __init__(self, data, *, scope: ReviewScope, **kwargs):
        if not data.get("per_page"):
            data = data.copy()  # so the page-size menu shows the size in use
            data["per_page"] = str(DEFAULT_PAGE_SIZE)
        super().__init__(data, scope=scope, **kwargs)
        self.fields["agent"].queryset = _agents_of(scope)
        self.fields["offer"].choices = [("", _("Any")), *_offer_choices()]

    def filters(self) -> dict:
        """Keyword arguments for agents_ui.review.selectors.offer_log_decisions."""
        since, until = self.bounds()
        data = self.cleaned_data
        agent = data.get("agent")
        return {
            "team_ids": self.team_ids(),
            "since": since,
            "until": until,
            "agent_id": agent.pk if agent else None,
            "offer_code": data["offer"],
            "outcome": data["outcome"],
            "risk_band": data["risk_band"],
            "overrides_only": data["overrides_only"],
            "explored_only": data["explored_only"],
        }


def _offer_choices() -> list[tuple[str, str]]:
    """Every offer of the catalog, retired ones too: the log keeps offers that are no longer made."""
    offers = Offer.objects.order_by("code").values_list("code", "title_nl", "title_en")
    return [(code, f"{in_language({'nl': nl, 'en': en}, fallback=code)} ({code})") for code, nl, en in offers]


def _agents_of(scope: ReviewScope):
    users = get_user_model().objects.filter(agent_profile__isnull=False)
    if not scope.all_teams:
        users = users.filter(agent_profile__team_id__in=scope.team_ids)
    return users.order_by("first_name", "last_name", "username")
