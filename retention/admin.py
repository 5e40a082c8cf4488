from dataclasses import asdict

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ml.policy import PolicyError, PolicySettings
from retention.models import (
    AgentProfile,
    ApiClient,
    Contract,
    Customer,
    CustomerAccess,
    Decision,
    DecisionAction,
    Erasure,
    Offer,
    PolicyConfig,
    ProtectedAttributes,
    RenewalResult,
    ServiceEvent,
    Tariff,
    Team,
)
from retention.selectors.erased_ids import configured_key_ids, erased_ids_among
from retention.services.access_log import accesses_record
from retention.services.api_clients import api_client_create
from retention.services.catalog import offer_eligibility_errors, policy_values_errors
from retention.services.erasure import ERASED_ID_PREFIX


class ReadOnlyAdmin(admin.ModelAdmin):
    """The decision log is append-only: the admin shows it but never edits or deletes it."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "monthly_budget_cents"]


@admin.register(AgentProfile)
class AgentProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "authority_level", "language"]
    list_filter = ["team", "role", "authority_level"]


class ContractInline(admin.TabularInline):
    model = Contract
    extra = 0


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = "__all__"

    def clean_external_id(self):
        """The admin stores no customer under a number the CRM may not send: the service's own names for erased
        customers, and the number of a customer erased at their request, until they are let back."""
        external_id = self.cleaned_data["external_id"]
        if external_id.startswith(ERASED_ID_PREFIX):
            raise forms.ValidationError(
                _("A customer number may not start with %(prefix)s."), params={"prefix": repr(ERASED_ID_PREFIX)}
            )
        changed = self.instance.pk is None or external_id != self.instance.external_id
        if changed and (match := erased_ids_among([external_id]).get(external_id)):
            erased_on = timezone.localtime(match.refusal.erasure.erased_at)
            raise forms.ValidationError(
                _(
                    "This is the number of a customer erased at their request on %(date)s. If they agreed to be "
                    "stored again, run `manage.py allow_customer_again %(external_id)s` first."
                ),
                params={"date": f"{erased_on:%Y-%m-%d}", "external_id": external_id},
            )
        return external_id


class OpeningLogged:
    """Opening one customer's data in the admin is an access like the panel's (see CustomerAccess): the admin shows
    protected values and every field, so who looked is recorded too."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200 and (customer := self.customer_of(object_id)):
            accesses_record(customers=[customer], purpose=CustomerAccess.Purpose.ADMIN, reader=request.user)
        return response


@admin.register(Customer)
class CustomerAdmin(OpeningLogged, admin.ModelAdmin):
    form = CustomerForm
    list_display = ["external_id", "display_name", "segment", "value_tier", "region", "signup_date"]
    list_filter = ["segment", "value_tier", "region", "objects_to_profiling"]
    search_fields = ["external_id", "display_name", "phone"]
    inlines = [ContractInline]
    # Set only by an erasure (manage.py erase_customer, or the API), which removes far more than this form shows.
    readonly_fields = ["erased_at"]

    def has_change_permission(self, request, obj=None):
        # An erased customer stays as the erasure left them: nothing about the person may be written back.
        return super().has_change_permission(request, obj) and not (obj is not None and obj.erased_at)

    def customer_of(self, object_id) -> Customer | None:
        return Customer.objects.filter(pk=object_id).first()

    def has_delete_permission(self, request, obj=None):
        # A customer leaves the service by erasure (manage.py erase_customer, or the API), which pseudonymises the
        # decision log, blanks scoring results and refuses the id's return; deleting the row would do none of that.
        return False


class OfALivingCustomerForm(forms.ModelForm):
    """Nothing about a person is written onto an erased customer's row, which stays as the erasure left it."""

    def clean_customer(self):
        customer = self.cleaned_data["customer"]
        if customer is not None and customer.erased_at is not None:
            raise forms.ValidationError(_("This customer's data was erased at their request: nothing may be added."))
        return customer


@admin.register(ProtectedAttributes)
class ProtectedAttributesAdmin(OpeningLogged, admin.ModelAdmin):
    form = OfALivingCustomerForm
    list_display = ["customer"]
    raw_id_fields = ["customer"]

    def customer_of(self, object_id) -> Customer | None:
        protected = ProtectedAttributes.objects.filter(pk=object_id).select_related("customer").first()
        return protected.customer if protected else None


@admin.register(ServiceEvent)
class ServiceEventAdmin(admin.ModelAdmin):
    form = OfALivingCustomerForm
    list_display = ["customer", "kind", "occurred_at", "value"]
    list_filter = ["kind"]
    raw_id_fields = ["customer"]


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "segment", "monthly_fee_cents", "active_from", "active_until"]
    list_filter = ["segment"]


class OfferForm(forms.ModelForm):
    class Meta:
        model = Offer
        fields = "__all__"

    def clean_eligibility(self):
        rules = self.cleaned_data["eligibility"]
        if errors := offer_eligibility_errors(rules):
            raise forms.ValidationError(errors)
        return rules


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    form = OfferForm
    list_display = [
        "code",
        "kind",
        "title_nl",
        "authority_level",
        "discount_percent",
        "duration_months",
        "commitment_months",
        "fixed_cost_cents",
        "is_active",
    ]
    list_filter = ["kind", "authority_level", "is_active"]
    search_fields = ["code", "title_nl", "title_en"]


class PolicyConfigForm(forms.ModelForm):
    """A new policy version: its settings are checked as the service will read them, and it must come after the
    version in force, which it replaces."""

    class Meta:
        model = PolicyConfig
        fields = ["version", "values"]

    def clean_values(self):
        """Every problem the policy fixture would be refused for, listed; then whatever the service's own reading
        refuses (an unknown setting, say)."""
        values = self.cleaned_data["values"]
        if not isinstance(values, dict):
            raise forms.ValidationError(_("the policy must be a JSON object of settings"))
        if errors := policy_values_errors(values):
            raise forms.ValidationError(errors)
        try:
            PolicySettings.from_values(values)
        except PolicyError as error:
            raise forms.ValidationError(str(error)) from error
        return values

    def clean_version(self):
        version = self.cleaned_data["version"]
        current = PolicyConfig.objects.order_by("-version").values_list("version", flat=True).first()
        if current is not None and version <= current:
            raise forms.ValidationError(
                _("a new policy version comes after the one in force (%(current)s)"), params={"current": current}
            )
        return version


@admin.register(PolicyConfig)
class PolicyConfigAdmin(admin.ModelAdmin):
    """Policy versions are added, never edited or deleted: every decision names the version it was made under."""

    form = PolicyConfigForm
    list_display = ["version", "created_at", "created_by"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changeform_initial_data(self, request):
        """The version in force, as the starting point of the next."""
        current = PolicyConfig.objects.order_by("-version").first()
        if current is None:
            return {"version": 1, "values": asdict(PolicySettings())}
        # Settings added since that version was stored start from their defaults, so the form names every one.
        return {"version": current.version + 1, "values": {**asdict(PolicySettings()), **current.values}}

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class ApiClientForm(forms.ModelForm):
    """Scopes picked from the known ones: typed as JSON, a misspelt scope would be stored and grant nothing."""

    scopes = forms.MultipleChoiceField(choices=ApiClient.Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiClient
        fields = ["name", "scopes", "teams", "is_active"]

    def clean_scopes(self) -> list[str]:
        return sorted(set(self.cleaned_data["scopes"]))


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    """A client added here gets its token from the same service as `create_api_client`, shown once on the page
    that follows; only its hash is kept."""

    form = ApiClientForm
    list_display = ["name", "token_prefix", "scopes", "is_active", "last_used_at"]
    readonly_fields = ["token_prefix", "last_used_at"]
    filter_horizontal = ["teams"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        teams = [team.name for team in form.cleaned_data["teams"]]
        created, token = api_client_create(name=obj.name, scopes=form.cleaned_data["scopes"], teams=teams)
        # The form's instance becomes the stored row, so the admin's own steps after this (teams, the change
        # message, the log entry) work on it; the token lives on it until the response shows it.
        for field in ("pk", "token_prefix", "token_hash", "created_at"):
            setattr(obj, field, getattr(created, field))
        obj._state.adding, obj._state.db = False, created._state.db
        if not obj.is_active:
            super().save_model(request, obj, form, change=True)
        obj.new_token = token

    def response_add(self, request, obj, post_url_continue=None):
        context = {
            **self.admin_site.each_context(request),
            "title": _("API client %(name)s") % {"name": obj.name},
            "client": obj,
            "token": obj.new_token,
            "opts": self.opts,
        }
        # The admin's pages are never cached already (no-store): the token is kept by no cache either.
        return TemplateResponse(request, "admin/retention/apiclient/token_created.html", context)


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "customer",
        "agent",
        "channel",
        "churn_probability",
        "risk_band",
        "recommended_offer_code",
    ]
    list_filter = ["channel", "risk_band"]
    list_select_related = ["customer", "agent"]


@admin.register(DecisionAction)
class DecisionActionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "decision", "kind", "offer_code", "override_reason", "agent"]
    list_filter = ["kind"]


@admin.register(RenewalResult)
class RenewalResultAdmin(ReadOnlyAdmin):
    list_display = ["customer", "result", "date", "source"]
    list_filter = ["result", "source"]


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = ["erased_at", "customer", "requested_by", "reference", "refuses_the_id"]
    list_select_related = ["customer", "refusal"]

    @admin.display(description=_("CRM's id"))
    def refuses_the_id(self, erasure: Erasure) -> str:
        """Whether a record the CRM sends with the customer's old id is left out (see allow_customer_again)."""
        refusal = getattr(erasure, "refusal", None)
        if refusal is None:
            return _("not refused")
        if refusal.allowed_at is not None:
            let_back = {"date": f"{timezone.localtime(refusal.allowed_at):%Y-%m-%d}", "by": refusal.allowed_by}
            return _("let back %(date)s by %(by)s") % let_back
        if refusal.key_id not in configured_key_ids():
            return _("refused under a secret key no longer configured: refuses nothing (see retention.W002)")
        return _("refused")


@admin.register(CustomerAccess)
class CustomerAccessAdmin(ReadOnlyAdmin):
    """Who opened or read which customer: searched by customer number, login or API client, to look into a
    customer's complaint or an agent's lookups."""

    list_display = ["at", "customer", "purpose", "user", "api_client"]
    list_filter = ["purpose", ("at", admin.DateFieldListFilter)]
    search_fields = ["customer__external_id", "user__username", "api_client__name"]
    list_select_related = ["customer", "user", "api_client"]
    date_hierarchy = "at"
    show_full_result_count = False
