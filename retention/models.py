"""The retention domain: customers, their contracts and history, the offer catalog and the decision log.

Money is held in integer cents; times are time-zone aware (stored in UTC).
Writes go through retention.services; nothing here writes other rows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_slug
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    monthly_budget_cents = models.PositiveBigIntegerField(
        default=0, help_text=_("What the team may spend on retention offers in a calendar month, in cents.")
    )

    def __str__(self) -> str:
        return self.name


class AgentProfile(models.Model):
    class Role(models.TextChoices):
        AGENT = "agent", "Agent"
        LEAD = "lead", "Team lead"
        ADMIN = "admin", "Administrator"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent_profile")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="members")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    authority_level = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(3)]
    )
    language = models.CharField(max_length=5, choices=settings.LANGUAGES, default="nl")
    keyboard_shortcuts = models.BooleanField(
        default=True,
        help_text=_("Single keys (1-3, a, d, t, e, n) act on the advice in the panel; off, only its buttons do."),
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, level {self.authority_level})"


class CustomerQuerySet(models.QuerySet):
    def not_erased(self) -> CustomerQuerySet:
        """Customers whose data was not erased: those an agent, a CRM or a model may still look at."""
        return self.filter(erased_at__isnull=True)

    def may_be_profiled(self) -> CustomerQuerySet:
        """Customers a model may score or learn from: not erased, and not objecting to profiling."""
        return self.not_erased().filter(objects_to_profiling=False)

    def former(self) -> CustomerQuerySet:
        """Customers who left, each with `left_on`, the day they did: their latest renewal result says they churned,
        and no contract starts after it or, still active, runs past it. A contract a CRM file or the API's short
        form made (no start, no end, still marked active) says nothing of a return."""
        latest = RenewalResult.objects.filter(customer=models.OuterRef("pk")).order_by("-date", "-pk")
        left_on = models.OuterRef("left_on")
        returned = Contract.objects.filter(customer=models.OuterRef("pk")).filter(
            models.Q(start_date__gt=left_on) | models.Q(status=Contract.Status.ACTIVE, end_date__gt=left_on)
        )
        return (
            self.annotate(
                last_result=models.Subquery(latest.values("result")[:1]),
                left_on=models.Subquery(latest.values("date")[:1]),
            )
            .filter(last_result=RenewalResult.Result.CHURNED)
            .exclude(models.Exists(returned))
        )

    def still_customers(self) -> CustomerQuerySet:
        """Customers who have not left (see `former`): those advice and scores are for. Former customers' history
        still teaches the models; their leaving is what the churn model learns from."""
        return self.exclude(pk__in=Customer.objects.former().values("pk"))


class Customer(models.Model):
    class Segment(models.TextChoices):
        CONSUMER = "consumer", "Consumer"
        BUSINESS = "business", "Business"

    class ValueTier(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    external_id = models.CharField(max_length=100, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=40, blank=True, db_index=True)
    segment = models.CharField(max_length=10, choices=Segment.choices, default=Segment.CONSUMER)
    value_tier = models.CharField(max_length=10, choices=ValueTier.choices, blank=True)
    signup_date = models.DateField(null=True, blank=True)
    region = models.CharField(max_length=100, blank=True)
    products = models.JSONField(
        default=list, blank=True, help_text=_("Product codes, e.g. internet, tv, mobile, fixed.")
    )
    attributes = models.JSONField(
        default=dict, blank=True, help_text=_("CRM-specific fields; each one is a model feature.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    erased_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When this customer's personal data was erased at their request.")
    )
    # A customer may object to profiling for direct marketing at any time, and that objection is absolute
    # (GDPR article 21(2) and (3)): no churn score, no ranked offers, and no part in training the models.
    objects_to_profiling = models.BooleanField(
        default=False, help_text=_("The customer objected to profiling for offers: no score, advice or training.")
    )

    objects = CustomerQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["display_name"])]

    def __str__(self) -> str:
        return f"{self.external_id} {self.display_name}".strip()


class ProtectedAttributes(models.Model):
    """Protected attributes (age, gender and the like), kept apart: never a model feature, only for fairness."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="protected")
    values = models.JSONField(default=dict)

    class Meta:
        verbose_name_plural = "protected attributes"

    def __str__(self) -> str:
        return f"protected attributes of {self.customer_id}"


# The products tariffs and offers' rules are written in; a customer's own list may hold others, which no tariff covers.
PRODUCTS = frozenset({"internet", "tv", "mobile", "fixed"})


MIN_TARIFF_FEE_CENTS = 100
# The catalog's own checks (below) speak the language of whoever reads them, as Django's field checks beside them do:
# the admin's user, or the site's language for the fixture loader. The API never runs them.
ENDS_BEFORE_IT_STARTS = _("ends before it starts")


class Tariff(models.Model):
    """A bundle as sold today: its price for a new customer is the reference for price parity."""

    # The API names the best tariff by its code: letters, digits, - and _, as an offer's.
    code = models.CharField(max_length=50, unique=True, validators=[validate_slug])
    name = models.CharField(max_length=200)
    products = models.JSONField(default=list)
    monthly_fee_cents = models.PositiveIntegerField(
        validators=[MaxValueValidator(1_000_000)], help_text=_("What a new customer pays a month, in cents.")
    )
    segment = models.CharField(
        max_length=10,
        choices=Customer.Segment.choices,
        default=Customer.Segment.CONSUMER,
        help_text=_("Who may take it: best-tariff advice only names a tariff of the customer's own segment."),
    )
    active_from = models.DateField(null=True, blank=True)
    active_until = models.DateField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} (€{self.monthly_fee_cents / 100:.2f})"

    def clean(self) -> None:
        """Every recommendation reads every tariff sold today: one that cannot be read as a bundle, or one at no
        price (every customer's best tariff), would make each piece of advice fail or mislead."""
        errors = {}
        # In English, as the catalog's checks of an offer's rules that share choice_list_problem are.
        if problem := choice_list_problem(self.products, PRODUCTS, of="products"):
            errors["products"] = problem
        if self.monthly_fee_cents is not None and self.monthly_fee_cents < MIN_TARIFF_FEE_CENTS:
            errors["monthly_fee_cents"] = ValidationError(
                _(
                    "must be at least %(cents)s cents (€ 1): less is a fee typed in euros rather than cents, and "
                    "would make this tariff every customer's best"
                ),
                params={"cents": MIN_TARIFF_FEE_CENTS},
            )
        if self.active_from and self.active_until and self.active_until < self.active_from:
            errors["active_until"] = ENDS_BEFORE_IT_STARTS
        if errors:
            raise ValidationError(errors)


def choice_list_problem(value: object, choices: Collection[str], *, of: str = "names") -> str:
    """What is wrong with a list that may name only these choices (a tariff's products, an offer rule's segments);
    empty when nothing is. An item that is no text (a list typed inside the list) is named as such, never looked up."""
    known = ", ".join(sorted(choices))
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        return f"must be a non-empty list of {of} ({known})"
    unknown = sorted(item for item in value if item not in choices)
    return f"has unknown values {', '.join(unknown)} (known: {known})" if unknown else ""


class Contract(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contracts")
    bundle = models.CharField(max_length=50, blank=True, help_text=_("Tariff code of the bundle."))
    contract_type = models.CharField(max_length=50, blank=True)
    monthly_fee_cents = models.PositiveIntegerField()
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    discount_cents = models.PositiveIntegerField(default=0, help_text=_("Current monthly discount, in cents."))
    discount_end = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        indexes = [models.Index(fields=["customer", "start_date"]), models.Index(fields=["end_date"])]

    def __str__(self) -> str:
        return f"{self.customer.external_id} {self.bundle} {self.start_date}-{self.end_date}"


class ServiceEvent(models.Model):
    class Kind(models.TextChoices):
        CONTACT = "contact", "Contact"
        COMPLAINT = "complaint", "Complaint"
        OUTAGE = "outage", "Outage"
        NPS = "nps", "NPS answer"
        PAYMENT_PROBLEM = "payment_problem", "Payment problem"
        COMPETITOR_OFFER = "competitor_offer", "Competitor offer mentioned"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    occurred_at = models.DateTimeField()
    value = models.FloatField(null=True, blank=True, help_text=_("NPS score 0-10, or outage hours."))
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["customer", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.kind} at {self.occurred_at:%Y-%m-%d %H:%M}"


class Offer(models.Model):
    """A counter-offer in the catalog. Its cost for a customer is fixed cost plus the discount over its duration."""

    class Kind(models.TextChoices):
        DISCOUNT = "discount", "Discount"
        GIFT = "gift", "Gift"
        UPGRADE = "upgrade", "Upgrade"
        SERVICE_RECOVERY = "service_recovery", "Service recovery"

    code = models.SlugField(max_length=50, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title_nl = models.CharField(max_length=200)
    title_en = models.CharField(max_length=200)
    terms_nl = models.TextField(blank=True)
    terms_en = models.TextField(blank=True)
    discount_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=0, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    duration_months = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(60)])
    commitment_months = models.PositiveSmallIntegerField(
        default=12,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text=_(
            "How long accepting the offer binds the customer to the renewed contract, in months (24 for an "
            "offer made on a two-year renewal). The best-tariff check compares what they pay over this period, at "
            "least a year, with moving to the cheapest covering tariff."
        ),
    )
    fixed_cost_cents = models.PositiveIntegerField(
        default=0,
        # An offer beyond € 100,000 is a typing error: it would drop out of every ranking without a word.
        validators=[MaxValueValidator(10_000_000)],
        help_text=_("One-off cost to the company, in cents."),
    )
    eligibility = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            "Rules, all optional: segments, value_tiers, requires_products, excludes_products, "
            "min_tenure_months, min_risk, requires_recent (complaint/outage within 90 days)."
        ),
    )
    authority_level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(3)])
    prior_uplift = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("Prior belief: share of the leave chance this offer removes, before any outcome is logged."),
    )
    active_from = models.DateField(null=True, blank=True)
    active_until = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.code} ({self.kind}, level {self.authority_level})"

    def clean(self) -> None:
        """An offer gives the customer something, and what it gives is what it costs us: one that cost nothing
        would be worth its whole effect and top every ranking while giving nothing."""
        errors = {}
        discount, months = self.discount_percent or 0, self.duration_months or 0
        if discount and not months:
            errors["duration_months"] = _("must be set when the offer gives a discount")
        elif months and not discount:
            errors["discount_percent"] = _("must be set when the offer has a duration: a discount of 0% gives nothing")
        elif not discount and not self.fixed_cost_cents:
            errors["fixed_cost_cents"] = _(
                "an offer must cost something, a discount for some months or a fixed cost (what a gift, upgrade or "
                "credit costs us): one that costs nothing would top every ranking while giving nothing"
            )
        if self.active_from and self.active_until and self.active_until < self.active_from:
            errors["active_until"] = ENDS_BEFORE_IT_STARTS
        if errors:
            raise ValidationError(errors)


class PolicyConfig(models.Model):
    """The policy settings in force; a change is a new version, so every decision names the one it used."""

    version = models.PositiveIntegerField(unique=True)
    values = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"policy v{self.version}"


class ApiClient(models.Model):
    """A CRM integration. Only a hash of its token is kept."""

    class Scope(models.TextChoices):
        READ = "read", "Read"
        SCORE = "score", "Score"
        WRITE_CUSTOMERS = "write_customers", "Write customers"
        WRITE_OUTCOMES = "write_outcomes", "Write outcomes"
        ERASE_CUSTOMERS = "erase_customers", "Erase customers"

    name = models.CharField(max_length=100, unique=True)
    token_prefix = models.CharField(max_length=8, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    teams = models.ManyToManyField(
        Team,
        blank=True,
        related_name="api_clients",
        help_text=_(
            "The teams this integration speaks for: it may name their agents and log outcomes on their "
            "advice only. None: every team."
        ),
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def is_authenticated(self) -> bool:
        return True


class ImmutableModel(models.Model):
    """Rows of the decision log are facts: an update would rewrite history, so it is refused."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError(f"{type(self).__name__} rows are append-only; record a new row instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(f"{type(self).__name__} rows are append-only and cannot be deleted")


class Decision(ImmutableModel):
    """One recommendation as it was made: inputs, model versions, scores and the ranked offers."""

    class Channel(models.TextChoices):
        PHONE = "phone", "Phone"
        CHAT = "chat", "Chat"
        EMAIL = "email", "E-mail"
        SHOP = "shop", "Shop"
        API = "api", "API"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="decisions")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    api_client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.PROTECT)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    reason = models.CharField(max_length=200, blank=True, help_text=_("Why the customer called, as given."))
    as_of = models.DateTimeField()
    features = models.JSONField(help_text=_("The feature values the models saw."))
    model_versions = models.JSONField()
    policy_version = models.PositiveIntegerField()
    churn_probability = models.FloatField()
    risk_band = models.CharField(max_length=10)
    # Either list may be empty: a customer with no eligible offer, a model that names no reason.
    reasons = models.JSONField(blank=True)
    offers = models.JSONField(blank=True, help_text=_("Ranked offers, best first, with values and propensities."))
    recommended_offer_code = models.CharField(max_length=50, blank=True)
    best_tariff = models.JSONField(null=True, blank=True)
    explored = models.BooleanField(default=False)
    control_group = models.BooleanField(
        default=False, help_text=_("The customer is in the random control group and got the default treatment.")
    )
    greedy_offer_code = models.CharField(
        max_length=50, blank=True, help_text=_("What the policy would have recommended without exploration.")
    )
    propensity = models.FloatField(
        default=1.0, help_text=_("The chance the policy recommends what it recommended (for off-policy evaluation).")
    )
    stay_probability_without_offer = models.FloatField(null=True, blank=True)
    horizon_months = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("Months of margin the offers' expected values count (the policy's horizon).")
    )
    renewal_fee_cents = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Monthly fee the offers were priced on, after price parity.")
    )
    idempotency_key = models.CharField(
        max_length=100,
        null=True,
        blank=True,
        unique=True,
        help_text=_(
            "A CRM's key for the request that asked for this advice: asking again with it returns this advice."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        # By the moment advised: the offer log sorts by it and every review page and the outcome log keep to a
        # window of it; without, a page deep in a year's log was an offset scan of the whole table.
        indexes = [models.Index(fields=["customer", "-created_at"]), models.Index(fields=["-as_of"])]

    def __str__(self) -> str:
        return f"decision {self.pk} ({self.risk_band} risk)"

    def offers_shown(self, *, limit: int, keep: Collection[str] = ()) -> list[dict]:
        """The best `limit` offers (every one when 0), then any later one that must not be left out: the
        recommended offer, and those named in `keep` (for instance offers something was logged on).

        The recommended offer can rank below offers that need a team lead, or be an explored one further down.
        """
        return self.offers_split(limit=limit, keep=keep)[0]

    def offers_split(self, *, limit: int, keep: Collection[str] = ()) -> tuple[list[dict], list[dict]]:
        """`offers_shown`, and the offers it leaves out, each in rank order."""
        wanted = {self.recommended_offer_code, *keep} - {""}
        shown, rest = [], []
        for rank, offer in enumerate(self.offers or []):
            (shown if not limit or rank < limit or offer["code"] in wanted else rest).append(offer)
        return shown, rest

    def offer(self, code: str) -> dict | None:
        """The offer of this code as the decision ranked it; None for a code it did not rank (or no code)."""
        return next((offer for offer in self.offers or [] if offer.get("code") == code), None) if code else None

    def outranks_its_choice(self, code: str) -> bool:
        """The offer is worth more than the best one the advised agent could make (or than none): the policy put it
        first but for the authority or budget it needs, so whoever has those makes it without overriding anything."""
        value = (self.offer(code) or {}).get("expected_net_value_cents")
        if value is None:  # no such offer, or advice stored before values were
            return False
        choice = self.offer(self.greedy_offer_code) or {}
        return value > choice.get("expected_net_value_cents", 0)

    @property
    def fee_unknown(self) -> bool:
        """The customer has no contract with a known fee: no offer could be priced, so none was ranked."""
        return self.renewal_fee_cents == 0

    @property
    def priced_on_cents(self) -> int | None:
        """The fee the offers were priced on, as the API gives it: None when none was known (stored as 0), as for
        advice stored before the fee was kept (null)."""
        return None if self.fee_unknown else self.renewal_fee_cents

    @property
    def no_offer_needed(self) -> bool:
        """Making no offer is worth most. A decision that explores, or a customer in the control group, may also
        get no offer while one is worth its cost: then the greedy choice names that offer. Where no offer could be
        priced nothing was weighed, so this is no judgement that none is needed."""
        return not self.recommended_offer_code and not self.greedy_offer_code and not self.fee_unknown


class DecisionAction(ImmutableModel):
    """The append-only action log: what the agent did and what the customer answered."""

    class Kind(models.TextChoices):
        PRESENTED = "presented", "Offer presented"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        THINKING = "thinking", "Thinking it over"
        ESCALATED = "escalated", "Escalated"
        NO_ACTION = "no_action", "No action"
        # An acceptance logged by mistake, taken back: the customer did not decline, so nothing counts against the
        # offer (contact policy, training); the offer stays made, without an answer.
        UNDONE = "undone", "Acceptance undone"

    class OverrideReason(models.TextChoices):
        CUSTOMER_REQUEST = "customer_request", "Customer asked for something else"
        BETTER_FIT = "better_fit", "Another offer fits the customer better"
        ALREADY_HAS = "already_has", "Customer already has the recommended offer"
        SERVICE_ISSUE = "service_issue", "Unresolved service issue comes first"
        OTHER = "other", "Other"

    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="actions")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    offer_code = models.CharField(max_length=50, blank=True)
    override_reason = models.CharField(
        max_length=20,
        blank=True,
        choices=OverrideReason.choices,
        help_text=_("Why an offer other than the recommended one was made."),
    )
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    api_client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.PROTECT)
    channel = models.CharField(max_length=10, choices=Decision.Channel.choices)
    cost_cents = models.PositiveIntegerField(default=0, help_text=_("Cost of the offer when accepted, in cents."))
    # The team whose budget an offer made (held) or accepted (spent) counts against, fixed when it is logged: the
    # advice's team, else the acting agent's, else for an acceptance the team that held the offer. Stored, so
    # spending stays with the team it was decided for when an agent moves, and a hold and the yes it honours are
    # known to be the same team's.
    charged_team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text=_("The team it spends.")
    )
    held_cents = models.PositiveIntegerField(
        default=0,
        help_text=_(
            "What an offer made holds of its team's monthly budget, in cents, until the customer answers it "
            "or the hold ends."
        ),
    )
    held_until = models.DateTimeField(
        null=True, blank=True, help_text=_("When the hold ends: the policy's offer_hold_days after the offer was made.")
    )
    idempotency_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.offer_code}".strip()

    def save(self, *args, **kwargs):
        # An offer made or accepted always counts against a team where one can be named: the advice's, else that
        # of the agent who logged it (the service names the holding team for a yes logged without an agent).
        if self._state.adding and self.charged_team_id is None and self.kind in BUDGET_KINDS:
            self.charged_team_id = self.decision.team_id or _team_id_of(self.agent_id)
        super().save(*args, **kwargs)


def _team_id_of(user_id: int | None) -> int | None:
    if user_id is None:
        return None
    return AgentProfile.objects.filter(user_id=user_id).values_list("team_id", flat=True).first()


# Groups of action kinds, named once for every reader of the log.
# The customer's answers to an offer put to them.
ANSWER_KINDS = frozenset({DecisionAction.Kind.ACCEPTED, DecisionAction.Kind.DECLINED, DecisionAction.Kind.THINKING})
# Answers that end the call about an offer; the other one of the two corrects a mis-logged one.
FINAL_ANSWER_KINDS = frozenset({DecisionAction.Kind.ACCEPTED, DecisionAction.Kind.DECLINED})
# The kinds that set an offer's standing answer on a decision: the customer's final answers, and an acceptance
# undone as logged by mistake, which leaves the offer made but unanswered.
STANDING_ANSWER_KINDS = FINAL_ANSWER_KINDS | {DecisionAction.Kind.UNDONE}
# What ends a standing acceptance: the customer declining after all, or the acceptance undone.
CORRECTING_KINDS = frozenset({DecisionAction.Kind.DECLINED, DecisionAction.Kind.UNDONE})
# An offer was put to the customer, or they answered one: the customer was made an offer.
OFFER_ACTION_KINDS = ANSWER_KINDS | {DecisionAction.Kind.PRESENTED}
# The offer was made, or the customer gave it a final answer (even without it being logged as made).
MADE_KINDS = FINAL_ANSWER_KINDS | {DecisionAction.Kind.PRESENTED}
# What counts against a team's budget: an offer made holds its cost, one accepted spends it.
BUDGET_KINDS = frozenset({DecisionAction.Kind.PRESENTED, DecisionAction.Kind.ACCEPTED})
# What may hold an offer's cost: the offer made, or "thinking it over" logged for an offer not made before (the
# customer was told of it, so it was made). A "thinking it over" after the offer was made holds nothing itself.
HOLDING_KINDS = frozenset({DecisionAction.Kind.PRESENTED, DecisionAction.Kind.THINKING})
# The offer was put to the customer without (yet) an acceptance.
SHOWN_KINDS = frozenset({DecisionAction.Kind.PRESENTED, DecisionAction.Kind.DECLINED, DecisionAction.Kind.THINKING})


def offer_hold(
    actions: Iterable[DecisionAction],
    offer_code: str,
    *,
    now: dt.datetime,
    taken_elsewhere: Iterable[dt.datetime] = (),
) -> DecisionAction | None:
    """The action by which the offer holds its cost on this decision now, if it does: the latest time it was made
    (a "thinking it over" that made it counts as made), its hold not ended, no acceptance or decline logged since
    (or only one undone: an acceptance logged by mistake leaves the offer made, unanswered), and no other offer
    standing accepted (this one can then no longer be). `actions` are the decision's log, in any order;
    `taken_elsewhere`, when the same offer was accepted, or made holding its cost, on the customer's other advice
    (`retention.selectors.budget.taken_elsewhere`): one since the offer was made here ends its hold for good.

    The team budget counts the same rule in SQL (`retention.selectors.budget.held_offers`).
    """
    latest_made, standing = None, {}
    for action in sorted(actions, key=lambda action: (action.created_at, action.pk or 0)):
        if action.offer_code == offer_code and _holds_when_logged(action):
            latest_made = action
            standing.pop(offer_code, None)
        elif action.kind in STANDING_ANSWER_KINDS:
            standing[action.offer_code] = action.kind
    if latest_made is None or not latest_made.held_cents or latest_made.held_until is None:
        return None
    if latest_made.held_until <= now or standing.get(offer_code) not in (None, DecisionAction.Kind.UNDONE):
        return None
    others_accepted = any(kind == DecisionAction.Kind.ACCEPTED for code, kind in standing.items() if code != offer_code)
    moved_or_taken = any(moment > latest_made.created_at for moment in taken_elsewhere)
    return None if others_accepted or moved_or_taken else latest_made


def _holds_when_logged(action: DecisionAction) -> bool:
    return action.kind == DecisionAction.Kind.PRESENTED or (action.kind in HOLDING_KINDS and action.held_cents > 0)


class RenewalResult(ImmutableModel):
    """Whether the customer renewed or left: the label both models learn from."""

    class Result(models.TextChoices):
        RENEWED = "renewed", "Renewed"
        CHURNED = "churned", "Churned"

    class Source(models.TextChoices):
        CRM = "crm", "CRM"
        IMPORT = "import", "File import"
        SIMULATION = "simulation", "Simulation"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="renewal_results")
    result = models.CharField(max_length=10, choices=Result.choices)
    date = models.DateField()
    source = models.CharField(max_length=10, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "date", "result"], name="one_result_per_customer_day")
        ]

    def __str__(self) -> str:
        return f"{self.result} on {self.date}"


class ScoringJob(models.Model):
    """A batch scoring run for an API client: churn probabilities of many customers, written to a CSV file.

    Written only by retention.services.scoring_jobs; the Celery task fills in progress and the result.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    api_client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="scoring_jobs")
    customer_ids = models.JSONField(
        null=True, blank=True, help_text=_("External ids to score, in order; null scores every customer.")
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text=_("Rows the result will have."))
    scored = models.PositiveIntegerField(default=0)
    unknown = models.PositiveIntegerField(default=0, help_text=_("Requested ids with no stored customer."))
    objecting = models.PositiveIntegerField(
        default=0, help_text=_("Requested ids whose customer objected to profiling: not scored.")
    )
    former = models.PositiveIntegerField(default=0, help_text=_("Requested ids of former customers: not scored."))
    model_version = models.CharField(max_length=50, blank=True)
    result_file = models.CharField(max_length=300, blank=True, help_text=_("The result CSV, relative to DATA_DIR."))
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"scoring job {self.pk} ({self.status})"


class Erasure(ImmutableModel):
    """A customer's personal data erased at their request (GDPR article 17): who asked it done, when, and what was
    kept. The customer row stays, under a random number no one can trace back, so the decision log and the team
    budgets it holds stay whole; nothing here names the customer."""

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="erasure")
    erased_at = models.DateTimeField(auto_now_add=True)
    requested_by = models.CharField(max_length=150, help_text=_("The user or API client that had it done."))
    reference = models.CharField(max_length=100, blank=True, help_text=_("The request's reference, e.g. a ticket."))
    removed = models.JSONField(help_text=_("How many rows of each kind were removed or emptied."))

    def __str__(self) -> str:
        # In the site's time zone, as the admin's lists show times, and saying which.
        return f"erasure of {self.customer.external_id} at {timezone.localtime(self.erased_at):%Y-%m-%d %H:%M %Z}"


class ErasedCustomerId(models.Model):
    """The keyed digest of the external id of a customer erased at their request, so that the CRM sending that id
    again does not store them anew and undo the erasure. The id itself is not kept: only who knows it and the
    site's secret key can match it. `allow_customer_again` lets the customer be stored again (they came back and
    agreed to it), recording who did and when; the row then refuses nothing."""

    digest = models.CharField(max_length=64, db_index=True)
    key_id = models.CharField(
        max_length=16, help_text=_("Which secret key the digest is made with: a fingerprint of the key, not the key.")
    )
    erasure = models.OneToOneField(Erasure, on_delete=models.PROTECT, related_name="refusal")
    created_at = models.DateTimeField(auto_now_add=True)
    allowed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the customer was let back, if they were.")
    )
    allowed_by = models.CharField(max_length=150, blank=True)
    allowed_reference = models.CharField(max_length=100, blank=True, help_text=_("E.g. the customer's new consent."))

    class Meta:
        verbose_name = "erased customer's id, refused"
        verbose_name_plural = "erased customers' ids, refused"
        constraints = [
            models.UniqueConstraint(
                fields=["digest"], condition=models.Q(allowed_at__isnull=True), name="one_refusal_in_force_per_id"
            )
        ]

    def __str__(self) -> str:
        if self.allowed_at is not None:
            return f"id let back {timezone.localtime(self.allowed_at):%Y-%m-%d %H:%M %Z} by {self.allowed_by}"
        return f"id refused since {timezone.localtime(self.created_at):%Y-%m-%d %H:%M %Z}"


class CustomerAccess(models.Model):
    """Someone opened or read a customer's data: who (an agent's login or a CRM's API client), when and for what.

    The provider must be able to tell an agent taking a customer's call from one looking up a neighbour (GDPR
    articles 5(2) and 32), and the customer may ask when and why their data was consulted (article 15). Rows are
    added, never changed; they go after ACCESS_LOG_DAYS."""

    class Purpose(models.TextChoices):
        CALL = "call", "Opened in the panel for a call"
        SEARCH = "search", "Listed in a panel search"
        RECORD = "record", "Record read by a CRM"
        ADVICE = "advice", "Advice asked by a CRM"
        SCORE = "score", "Score asked by a CRM"
        ADMIN = "admin", "Opened in the admin"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="accesses")
    at = models.DateTimeField(default=timezone.now)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    api_client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.PROTECT)

    class Meta:
        verbose_name = "customer access"
        verbose_name_plural = "customer accesses"
        indexes = [
            models.Index(fields=["customer", "at"], name="access_by_customer"),
            models.Index(fields=["user", "at"], name="access_by_user"),
            models.Index(fields=["at"], name="access_by_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=True) ^ models.Q(api_client__isnull=True), name="access_has_one_reader"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_purpose_display()}: {self.customer.external_id} at {timezone.localtime(self.at):%Y-%m-%d %H:%M}"
        )
