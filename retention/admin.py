from django import forms
from django.contrib import admin

from retention.models import (
    AgentProfile,
    ApiClient,
    Contract,
    Customer,
    Decision,
    DecisionAction,
    Offer,
    PolicyConfig,
    ProtectedAttributes,
    RenewalResult,
    ServiceEvent,
    Tariff,
    Team,
)
from retention.services.catalog import offer_eligibility_errors


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


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["external_id", "display_name", "segment", "value_tier", "region", "signup_date"]
    list_filter = ["segment", "value_tier", "region"]
    search_fields = ["external_id", "display_name", "phone"]
    inlines = [ContractInline]


@admin.register(ProtectedAttributes)
class ProtectedAttributesAdmin(admin.ModelAdmin):
    list_display = ["customer"]
    raw_id_fields = ["customer"]


@admin.register(ServiceEvent)
class ServiceEventAdmin(admin.ModelAdmin):
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
        "fixed_cost_cents",
        "is_active",
    ]
    list_filter = ["kind", "authority_level", "is_active"]
    search_fields = ["code", "title_nl", "title_en"]


@admin.register(PolicyConfig)
class PolicyConfigAdmin(admin.ModelAdmin):
    list_display = ["version", "created_at", "created_by"]


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "token_prefix", "scopes", "is_active", "last_used_at"]
    readonly_fields = ["token_prefix", "token_hash", "last_used_at"]
    filter_horizontal = ["teams"]


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
