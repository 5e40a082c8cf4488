"""The agent panel: find a customer, show the decision for them, and log what happened, with or without htmx."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from functools import wraps
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from agents_ui import labels
from agents_ui.forms import DecisionActionForm, DecisionRefreshForm, PanelQueryForm, PanelSearchForm
from agents_ui.presenters import DecisionPanel, Viewer, decision_panel, escalation_open, in_language
from agents_ui.templatetags.panel_tags import customer_panel_address, euro
from config.counting import counted_in_cache
from ml.registry import ChampionUnavailable, NoChampion
from retention.models import AgentProfile, Customer, CustomerAccess, Decision, DecisionAction
from retention.selectors.budget import BudgetStatus
from retention.selectors.catalog import offer_titles_in_catalog, policy_current
from retention.selectors.panel import (
    CUSTOMER_NUMBER_DIGITS,
    NAME_PART_MIN_WORDS,
    PHONE_QUERY,
    SEARCH_LIMIT,
    advice_to_reopen,
    customer_card,
    customer_get,
    customer_search,
    decision_actions,
    decision_get,
    decision_watch,
    recent_offers,
    team_budget_status,
    team_lead_level,
)
from retention.services.access_log import accesses_record
from retention.services.agents import agent_language_set, agent_shortcuts_set
from retention.services.decisions import (
    FormerCustomer,
    IdempotencyKeyTaken,
    ProfilingObjection,
    answers_for_team,
    best_tariff_advice,
    decides_escalation,
    decision_action_record,
    decision_create,
    leads_team_of,
    may_act_on,
    takes_calls,
)

logger = logging.getLogger(__name__)

PANEL_TEMPLATE = "agents_ui/panel.html"
# Opening the same customer again within this time, on the same channel, is taken as the same call: the panel
# shows the advice it gave then instead of logging a second one, which would count as advice nobody acted on.
SAME_CALL = dt.timedelta(minutes=30)
# The agent's latest searches, kept in their session so that a results page can be shown again by its token.
SAVED_SEARCHES = "panel_searches"
SAVED_SEARCHES_KEPT = 20
SEARCH_TOKEN_LENGTH = 20
DECISION_FRAGMENT = "agents_ui/partials/decision_response.html"
ADMINISTRATORS_TAKE_NO_CALLS = gettext_lazy(
    "Administrators do not take calls, so no advice is made in your name. Decide what was escalated to you under "
    "Review, Escalations."
)
# The panel's own refusal of a form whose key an earlier, different action took (see `_record`).
FORM_USED_FOR_ANOTHER_ACTION = "form_used_for_another_action"
# The service explains its refusals in English, for API clients; the panel words every one in the agent's language
# by its code, %(offer)s being the offer's title. A code missing here is logged as an error and shown in English.
REFUSALS_IN_AGENT_LANGUAGE = {
    "profiling_objection": gettext_lazy(
        "This customer objected to profiling for offers: no offer from this advice is made to them."
    ),
    "another_offer_accepted": gettext_lazy(
        "“%(offer)s” is already accepted on this advice. To make or answer another offer, first undo that acceptance."
    ),
    "offer_stands_accepted": gettext_lazy(
        "“%(offer)s” is accepted on this advice, so something was done. If it was not accepted, first undo that "
        "acceptance."
    ),
    "needs_authority": gettext_lazy(
        "“%(offer)s” needs authority level %(level)s: ask someone who has it (your team lead or an administrator)."
    ),
    "beyond_authority": gettext_lazy("“%(offer)s” is beyond the limits of every authority level: nobody may make it."),
    "over_team_budget": gettext_lazy(
        "“%(offer)s” costs more than the team's budget has left this month: ask your team lead."
    ),
    "already_answered": gettext_lazy("this answer is already logged for “%(offer)s”."),
    "just_logged": gettext_lazy("this was already the last thing logged on this advice."),
    "already_escalated": gettext_lazy("“%(offer)s” was already escalated: it waits for an answer."),
    "call_already_escalated": gettext_lazy("this call was already escalated: it waits for an answer."),
    "escalation_by_lead": gettext_lazy(
        "you answer for this advice yourself: make the offer or log what happened instead of escalating."
    ),
    "accepted_recently": gettext_lazy(
        "this customer already accepted “%(offer)s” in the last %(days)s days, on other advice (another call or "
        "channel, or earlier advice on this call)."
    ),
    "declined_recently": gettext_lazy(
        "this customer declined “%(offer)s” in the last %(days)s days, on other advice: it is not made again so soon."
    ),
    "team_budget_spent": gettext_lazy(
        "“%(offer)s” costs more than the team's budget has left this month (%(left)s), after what the team's other "
        "calls since this advice accepted or hold for offers still to be answered: ask your team lead."
    ),
    "offer_withdrawn": gettext_lazy(
        "“%(offer)s” is no longer in the catalog, so it is not made any more: ask for new advice."
    ),
    "hold_ended": gettext_lazy(
        "“%(offer)s” no longer holds part of the team's budget (it was made more than %(days)s days ago, or "
        "answered since), and costs more than the budget has left this month (%(left)s): ask your team lead."
    ),
    "customer_budget_spent": gettext_lazy(
        "“%(offer)s” costs more than is left of this customer's budget this month (%(left)s), after what they "
        "accepted this month."
    ),
    "customer_erased": gettext_lazy(
        "this customer's data was erased at their request: nothing more is logged on their advice."
    ),
    "unknown_offer": gettext_lazy(
        "“%(offer)s” is not among the offers of this advice: reload the panel, or ask for new advice."
    ),
    "offer_needed": gettext_lazy("this is about an offer: log it with the buttons of the offer it is about."),
    "offer_not_expected": gettext_lazy("“No action” is about no offer: log it without one."),
    "nothing_to_undo": gettext_lazy(
        "“%(offer)s” does not stand accepted on this advice: there is no acceptance to undo."
    ),
    "override_reason_needed": gettext_lazy("choose why you offer something other than the recommended offer."),
    "not_an_override": gettext_lazy(
        "this needs no reason: a reason is only for offering something other than the recommended offer. Log it "
        "again without one."
    ),
    FORM_USED_FOR_ANOTHER_ACTION: gettext_lazy("this form was already used for another action: reload the panel."),
    "not_a_caller": ADMINISTRATORS_TAKE_NO_CALLS,
}
# The action form's fields as the agent knows them, before what is wrong with them; a field missing here (the
# form's hidden key) is nothing the agent filled in: the form as a whole is what could not be read.
FORM_FIELDS_IN_AGENT_LANGUAGE = {
    "kind": gettext_lazy("What happened"),
    "offer_code": gettext_lazy("Offer"),
    "override_reason": gettext_lazy("Reason for another offer"),
}
FORM_NOT_READ = gettext_lazy("this form could not be read: reload the panel.")


def agent_profile_of(user) -> AgentProfile | None:
    try:
        return user.agent_profile
    except AgentProfile.DoesNotExist:
        return None


NO_AGENT_PROFILE = gettext_lazy(
    "Your account has no agent profile, so it cannot open the retention panel. "
    "Ask your team lead or an administrator to give you access."
)


# The same words the advice itself shows such a viewer (agents_ui/partials/decision.html).
ANOTHER_AGENTS_ADVICE = gettext_lazy("This advice was made for another agent: you can read it, not log on it.")


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    """The 403 page, saying why: no data of any customer on it."""
    return render(request, "agents_ui/forbidden.html", {"message": message}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The 404 page outside the API (which answers in JSON): in the reader's language, with a way back."""
    return render(request, "agents_ui/not_found.html", status=404)


def agent_required(view):
    """Logged in, and an agent, team lead or administrator: anyone else sees a 403 and no customer data."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if agent_profile_of(request.user) is None:
            return forbidden(request, NO_AGENT_PROFILE)
        return view(request, *args, **kwargs)

    logged_in_and_guarded = login_required(guarded)

    @wraps(view)
    def entry(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if (request.htmx or request.method == "POST") and not request.user.is_authenticated:
            return login_again(request)
        return logged_in_and_guarded(request, *args, **kwargs)

    return entry


def login_again(request: HttpRequest) -> HttpResponse:
    """A click in a page whose session ended mid-call: the whole page goes to the login, which leads back to the
    page the click came from (showing the same advice), not to the address of the click, which only takes a POST.
    Nothing of the click was done, so the agent sees its log as it was and does it again."""
    messages.warning(request, _("Your session had ended, so that was not saved. Log in, then do it again."))
    login = redirect_to_login(page_clicked_on(request)).url
    return HttpResponseClientRedirect(login) if request.htmx else HttpResponseRedirect(login)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent from a page older than its session: explained, with the way back to that page, instead of the bare
    403. A sign-in form is not a click lost with a session: it is refused as any other expired page."""
    if (request.htmx or request.method == "POST") and not request.user.is_authenticated and not _signing_in(request):
        return login_again(request)
    if request.htmx:
        messages.warning(request, _("This page had expired, so that was not saved. Do it again."))
        return HttpResponseClientRedirect(page_clicked_on(request))
    # Without script the refusal stays a 403, with the way back to the page (reloading this one would send it again).
    context = {"message": _("This page had expired, so nothing was saved. Go back to the page and do it again.")}
    if _signing_in(request):  # nothing is saved by signing in: what did not happen is the sign-in
        context = {
            "heading": _("Not signed in"),
            "message": _("The sign-in page had expired, so you are not signed in. Go back to it and sign in again."),
        }
    return render(request, "agents_ui/forbidden.html", {**context, "back": page_clicked_on(request)}, status=403)


def _signing_in(request: HttpRequest) -> bool:
    return request.path in (reverse("login"), reverse("admin:login"))


def page_clicked_on(request: HttpRequest) -> str:
    """The page a form was sent from (htmx says; without script, the browser's Referer on this site), without
    `new=1`: going back there must show the advice the click was on, not ask for another."""
    page = request.htmx.current_url_abs_path if request.htmx else request.headers.get("Referer", "")
    same_site = url_has_allowed_host_and_scheme(page, allowed_hosts={request.get_host()}, require_https=False)
    if not page or not same_site:
        return reverse("panel")
    parts = urlsplit(page)
    query = [(name, value) for name, value in parse_qsl(parts.query) if name != "new"]
    return parts.path + (f"?{urlencode(query)}" if query else "")


# --- the panel page -----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@agent_required
def panel(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _search_posted(request)
    form = PanelQueryForm(request.GET)
    if not form.is_valid():
        if "q" in form.errors:
            return _search(request, form)
        return _render_panel(request, form, status=400, error=_("The link to this page is not valid."))
    if (form.cleaned_data["customer"] or form.cleaned_data["q"]) and not _asked_for_here(request):
        # Nothing is shown, searched or logged: the agent's own click on the link below does it.
        return _render_panel(request, form, confirm_url=request.get_full_path())
    if form.cleaned_data["customer"]:
        return _customer_panel(request, form)
    if form.cleaned_data["search"]:
        return _saved_search(request, form.cleaned_data["search"])
    return _search(request, form)


def _asked_for_here(request: HttpRequest) -> bool:
    """Whether the agent asked for this customer or search themselves: from the panel or the address bar, by
    clicking a link in another site (the CRM), or in the CRM's frame where CRM_ORIGINS allows one. Another site's
    page sending the browser here by script, unseen, would otherwise log advice and reads of customers in the
    agent's name. Browsers that send no Sec-Fetch headers are taken at their word."""
    site = request.headers.get("Sec-Fetch-Site")
    if site in (None, "same-origin", "none"):
        return True
    destination = request.headers.get("Sec-Fetch-Dest")
    if destination in ("iframe", "frame"):
        return bool(settings.CRM_ORIGINS)
    return destination == "document" and request.headers.get("Sec-Fetch-User") == "?1"


def _search_posted(request: HttpRequest) -> HttpResponse:
    """The panel's own search form posts: a name or phone number typed into it then stays out of the page's address,
    and so out of the browser's history, the web server's access log and the Referer of links. The search is kept in
    the agent's session under a token (see `_search_token`), and the results page is shown at an address naming only it,
    so going back to it, reloading it or switching language never sends the form again."""
    form = PanelSearchForm(request.POST)
    if not form.is_valid():
        return _search(request, form)
    if not form.cleaned_data["q"]:
        return HttpResponseRedirect(reverse("panel"), status=303)
    search = {"q": form.cleaned_data["q"], "channel": form.cleaned_data["channel"]}
    token = _search_token(request, search)
    searches = request.session.get(SAVED_SEARCHES, {})
    searches.pop(token, None)  # the same search again moves to the latest
    searches[token] = search
    request.session[SAVED_SEARCHES] = dict(list(searches.items())[-SAVED_SEARCHES_KEPT:])
    return HttpResponseRedirect(f"{reverse('panel')}?{urlencode({'search': token})}", status=303)


def _search_token(request: HttpRequest, search: dict) -> str:
    """The same search in the same login always gets the same token, so a form sent twice at once (a double click)
    leads to a page the session holds whichever of the two saves its list last; in another login it means nothing."""
    value = f"{search['channel']}\n{search['q']}"
    secret = f"{settings.SECRET_KEY}:{request.session.session_key}"
    return salted_hmac("agents_ui.panel-search", value, secret=secret, algorithm="sha256").hexdigest()[
        :SEARCH_TOKEN_LENGTH
    ]


def _saved_search(request: HttpRequest, token: str) -> HttpResponse:
    saved = request.session.get(SAVED_SEARCHES, {}).get(token)
    if saved is None:
        message = _("This search is no longer kept: searches last as long as your login. Search again.")
        return _render_panel(request, PanelSearchForm(), status=404, error=message)
    return _search(request, PanelSearchForm(saved))


def _search(request: HttpRequest, form: PanelSearchForm) -> HttpResponse:
    if not form.is_valid():
        if "q" in form.errors:
            error = _("Search with a customer number, name or phone number of at most 200 characters.")
        else:
            error = _("The search could not be read. Search again.")
        return _render_panel(request, form, status=400, error=error)
    query = form.cleaned_data["q"]
    if not query:
        return _render_panel(request, form, query=query, customers=None)
    if not search_allowed(request.user):
        message = _("More than %(count)s searches in a minute: wait a minute, then search again.") % {
            "count": SEARCHES_PER_MINUTE
        }
        return _render_panel(request, form, status=429, error=message)
    # One more than is shown tells whether more match. Then none is listed but an exact customer number: a search
    # is for finding the customer on the line, not for browsing through others' names and numbers.
    found = customer_search(query=query, limit=SEARCH_LIMIT + 1)
    more_found = len(found) > SEARCH_LIMIT
    if more_found:
        found = [customer for customer in found if customer.external_id.casefold() == query.casefold()]
    accesses_record(customers=found, purpose=CustomerAccess.Purpose.SEARCH, reader=request.user)
    return _render_panel(
        request, form, query=query, customers=found, more_found=more_found, shown_limit=SEARCH_LIMIT,
        one_word_name=_one_word_name(query),
    )  # fmt: skip


def _one_word_name(query: str) -> bool:
    """Too few words for a name, and no number: a part of a name, which `customer_search` takes only of
    NAME_PART_MIN_WORDS words or more, or a customer number that does not exist; the panel then says what to type
    instead of only "nobody found"."""
    text = query.strip()
    too_few = 0 < len(text.split()) < NAME_PART_MIN_WORDS
    return too_few and not CUSTOMER_NUMBER_DIGITS.fullmatch(text) and not PHONE_QUERY.match(text)


def _customer_panel(request: HttpRequest, form: PanelQueryForm) -> HttpResponse:
    external_id = form.cleaned_data["customer"]
    customer = customer_get(external_id=external_id)
    if customer is None:
        message = _("No customer found with number %(number)s.") % {"number": external_id}
        return _render_panel(request, form, status=404, error=message)
    if customer.objects_to_profiling:
        # Not even advice made before the objection was recorded: it describes them by a profile, and its offers
        # may no longer be made.
        return _objection_panel(request, form, customer, best_tariff_advice(customer=customer, now=timezone.now()))
    if not form.cleaned_data["decision"]:
        return _advice_of_this_call(request, form, customer)
    decision = decision_get(decision_id=form.cleaned_data["decision"], customer=customer)
    if decision is None:
        return _render_panel(request, form, status=404, error=_("This advice does not belong to this customer."))
    context = customer_context(request, customer, decision)
    if decision.agent_id == request.user.pk and decision.created_at >= timezone.now() - SAME_CALL:
        # The address every logged action leads to: reloading it keeps the way to new advice in the same call.
        new_advice = new_advice_url(customer=customer, channel=decision.channel)
        return _render_panel(request, form, new_advice_url=new_advice, **context)
    return _render_panel(request, form, **context)


def _advice_of_this_call(request: HttpRequest, form: PanelQueryForm, customer: Customer) -> HttpResponse:
    """The advice this agent had for the customer on this channel in the last SAME_CALL, else new advice."""
    channel = form.cleaned_data["channel"]
    earlier = None
    if not form.cleaned_data["new"]:
        since = timezone.now() - SAME_CALL
        earlier = advice_to_reopen(customer=customer, agent=request.user, channel=channel, since=since)
    if earlier is None:
        return _new_advice_panel(request, form, customer)
    context = customer_context(request, customer, earlier)
    new_advice = new_advice_url(customer=customer, channel=channel)
    return _render_panel(request, form, reopened_at=earlier.created_at, new_advice_url=new_advice, **context)


def _new_advice_panel(request: HttpRequest, form: PanelQueryForm, customer: Customer) -> HttpResponse:
    if not takes_calls(request.user):
        return _render_panel(request, form, status=403, error=ADMINISTRATORS_TAKE_NO_CALLS)
    if not _opened_as_a_page(request):
        return _render_panel(request, form, status=403, error=_("Advice is asked for by opening the panel."))
    try:
        decision = decision_create(customer=customer, channel=form.cleaned_data["channel"], agent=request.user)
    except ChampionUnavailable:
        logger.exception("panel advice for customer %s: no churn model can be loaded", customer.external_id)
        message = _("No advice is available: the churn model's files cannot be loaded. Tell your team lead.")
        return _render_panel(request, form, status=503, error=message)
    except NoChampion:
        logger.exception("panel advice for customer %s: no churn model", customer.external_id)
        message = _("No advice is available yet: the churn model has not been trained. Tell your team lead.")
        return _render_panel(request, form, status=503, error=message)
    except ProfilingObjection as objection:
        return _objection_panel(request, form, customer, objection.best_tariff)
    except FormerCustomer as former:
        card = customer_card(customer=customer)
        return _render_panel(request, form, customer=customer, card=card, former={"left_on": former.left_on})
    except ValidationError as error:
        return _render_panel(request, form, status=422, error=" ".join(_problems(error, None)))
    return _render_panel(request, form, **customer_context(request, customer, decision))


def _objection_panel(
    request: HttpRequest, form: PanelQueryForm, customer: Customer, best_tariff: dict | None
) -> HttpResponse:
    """The customer as they are, and the best-tariff advice every customer is owed: no score and no offers. The
    offers put to them before they objected, which they may still answer, come with the answers to log."""
    recent_days = _days_offers_are_held_back()
    offers = recent_offers(customer=customer, days=recent_days)
    now = timezone.now()
    return _render_panel(
        request,
        form,
        customer=customer,
        card=customer_card(customer=customer),
        objection={"best_tariff": best_tariff},
        recent_offers=offers,
        recent_offer_days=recent_days,
        awaiting_answers=[
            {"offer": offer, "action_url": reverse("decision_action", args=[offer.decision_id])}
            for offer in offers
            if offer.answer in ("", DecisionAction.Kind.THINKING)
        ],
        answer_kinds=[
            (kind, labels.label(labels.ACTION_KINDS, kind))
            for kind in (DecisionAction.Kind.ACCEPTED, DecisionAction.Kind.DECLINED)
        ],
        # An acceptance logged here by a slip can be taken back while the call lasts, as on the advice itself.
        undoable_answers=[
            {"offer": offer, "action_url": reverse("decision_action", args=[offer.decision_id])}
            for offer in offers
            if offer.answer == DecisionAction.Kind.ACCEPTED
            and offer.answered_at
            and now - offer.answered_at < SAME_CALL
        ],
    )


# What a browser says it fetches the panel as (Sec-Fetch-Dest): a page, or a frame in the CRM. Anything else (an
# image, a script, another site's fetch) is another site making the agent's browser ask for advice in the agent's
# name: it would fill the log with advice nobody saw. A browser that sends no such header is taken at its word.
PAGE_DESTINATIONS = {"document", "iframe", "frame"}


def _opened_as_a_page(request: HttpRequest) -> bool:
    destination = request.headers.get("Sec-Fetch-Dest")
    if destination is None or destination in PAGE_DESTINATIONS:
        return True
    # htmx's own requests come from the panel itself.
    return destination == "empty" and request.headers.get("Sec-Fetch-Site") == "same-origin"


def _render_panel(request: HttpRequest, form: PanelSearchForm, *, status: int = 200, **context) -> HttpResponse:
    if status < 400 and (customer := context.get("customer")) is not None:
        # Recorded where a customer's data is shown, and only then: a refusal shows none.
        accesses_record(customers=[customer], purpose=CustomerAccess.Purpose.CALL, reader=request.user)
    return render(request, PANEL_TEMPLATE, {"form": form, **context}, status=status)


# An agent searches for the customer on the line a few times a call; scripted searches, one after another, would
# copy the base a page at a time.
SEARCHES_PER_MINUTE = 20


def search_allowed(user) -> bool:
    """Counts this search against the login's allowance for the current minute; False once it is spent."""
    key = f"panel-searches:{user.pk}:{int(time.time() // 60)}"
    return counted_in_cache(key, seconds=120, what="a panel search") <= SEARCHES_PER_MINUTE


def customer_context(request: HttpRequest, customer: Customer, decision: Decision) -> dict:
    """The panel for one customer; a fixed number of queries whatever the size of their history."""
    recent_days = _days_offers_are_held_back()
    return {
        "customer": customer,
        "card": customer_card(customer=customer),
        "recent_offers": recent_offers(customer=customer, days=recent_days, exclude_decision_id=decision.pk),
        "recent_offer_days": recent_days,
        "decision_url": panel_url(customer=customer, decision_id=decision.pk),
        **decision_context(request, decision),
    }


def _days_offers_are_held_back() -> int:
    """The days the policy keeps an offer from being made again, accepted (`recent_offer_days`) or declined (the
    contact policy's days): the list of offers made covers both, so every offer left out of the advice for what
    happened to it before is there to say why."""
    policy = policy_current()[1]
    return max(policy.recent_offer_days, policy.contact_policy_days)


def decision_context(request: HttpRequest, decision: Decision) -> dict:
    """The advice as this viewer may act on it, and their team's budget this month; for a viewer of no team (an
    administrator deciding what was escalated to them), the budget of the team the advice spends."""
    budget = _team_budget(request)
    if budget is None and decision.team_id is not None:
        budget = team_budget_status(team=decision.team)
    return {
        "budget": budget,
        "panel": decision_panel(
            decision=decision, actions=decision_actions(decision=decision), viewer=_viewer(request, decision, budget)
        ),
        "can_act": may_act_on(request.user, decision),
        "action_url": reverse("decision_action", args=[decision.pk]),
        "override_reasons": list(labels.OVERRIDE_REASONS.items()),
        "refresh_seconds": settings.PANEL_REFRESH_SECONDS,
    }


def _viewer(request: HttpRequest, decision: Decision, own_team_budget: BudgetStatus | None) -> Viewer:
    profile = agent_profile_of(request.user)
    # The team the offer is charged to: the advice's, or for advice asked without an agent, the viewer's.
    charged = decision.team_id or profile.team_id
    if charged is None:
        left = None
    elif charged == profile.team_id and own_team_budget is not None:
        left = own_team_budget.remaining_cents
    else:
        left = team_budget_status(team=decision.team).remaining_cents
    return Viewer(
        authority_level=profile.authority_level,
        answers_for_team=answers_for_team(profile, decision),
        team_lead_level=team_lead_level(charged),
        decides_over_budget=leads_team_of(profile, decision),
        team_budget_left_cents=left,
    )


def _team_budget(request: HttpRequest) -> BudgetStatus | None:
    team = agent_profile_of(request.user).team
    return team_budget_status(team=team) if team is not None else None


def panel_url(*, customer: Customer, decision_id: uuid.UUID) -> str:
    """The address of this decision: opening it again shows the same advice instead of making a new one."""
    return reverse("panel") + "?" + urlencode({"customer": customer.external_id, "decision": str(decision_id)})


def new_advice_url(*, customer: Customer, channel: str) -> str:
    """The address that asks for new advice even within the same call (see SAME_CALL)."""
    return reverse("panel") + "?" + urlencode({"customer": customer.external_id, "channel": channel, "new": 1})


# --- watching for a decision by someone else ------------------------------------------------------


def quiet_when_signed_out(view):
    """A background look of a panel whose sign-in ended answers 204: the agent saved nothing, so nothing is said
    and the page stays; their next click meets the sign-in as any click would."""

    @wraps(view)
    def quiet(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return HttpResponse(status=204)
        return view(request, *args, **kwargs)

    return quiet


@require_GET
@quiet_when_signed_out
@agent_required
def decision_refresh(request: HttpRequest, decision_id: uuid.UUID) -> HttpResponse:
    """The offers again once the advice's log holds more than the panel shows (mostly a team lead deciding what the
    agent escalated, while the call goes on); 204, which leaves the panel as it is, while it holds no more."""
    form = DecisionRefreshForm(request.GET)
    if not form.is_valid():
        return HttpResponse(status=400)
    watch = decision_watch(decision_id=decision_id)
    if watch.objecting_customer:
        # The advice on screen may no longer be acted on: the panel shows the customer as they now are.
        return HttpResponse(headers={"HX-Redirect": customer_panel_address(watch.objecting_customer)})
    if watch.actions == form.cleaned_data["shown"]:
        return HttpResponse(status=204)
    decision = get_object_or_404(Decision.objects.select_related("customer").defer("features"), pk=decision_id)
    context = decision_context(request, decision)
    return render(request, DECISION_FRAGMENT, {**context, "feedback": _latest_by_another(context["panel"], request)})


def _latest_by_another(panel: DecisionPanel, request: HttpRequest) -> str:
    """What the panel says of the newest action: who logged it, when that was not the viewer ("" for an empty log,
    which only a hand-made address shows)."""
    if not panel.actions:
        return ""
    latest = panel.actions[-1]
    action = f"{latest.kind_label}: {latest.offer_title}" if latest.offer_title else latest.kind_label
    turned_down = [offer.title for offer in [*panel.offers, *panel.more_offers] if offer.turned_down_by == latest.actor]
    if latest.kind == DecisionAction.Kind.NO_ACTION and turned_down and latest.agent_id != request.user.pk:
        return _("%(actor)s turned down your question about %(offers)s.") % {
            "actor": latest.actor,
            "offers": ", ".join(turned_down),
        }
    if latest.actor and latest.agent_id != request.user.pk:
        return _("Logged by %(actor)s: %(action)s.") % {"actor": latest.actor, "action": action}
    return _("Logged: %(action)s.") % {"action": action}


# --- logging an action --------------------------------------------------------------------------


@require_POST
@agent_required
def decision_action(request: HttpRequest, decision_id: uuid.UUID) -> HttpResponse:
    decision = get_object_or_404(Decision.objects.select_related("customer").defer("features"), pk=decision_id)
    if not may_act_on(request.user, decision):
        return forbidden(request, ANOTHER_AGENTS_ADVICE)
    form = DecisionActionForm(request.POST)
    if not form.is_valid():
        return _action_refused(request, decision, _form_problems(form))
    try:
        action = _record(form.action_values(request.user), decision, request.user)
    except ValidationError as error:
        return _action_refused(request, decision, _problems(error, decision))
    return _action_logged(request, decision, action)


def _record(values: dict, decision: Decision, agent) -> DecisionAction:
    try:
        return decision_action_record(decision=decision, agent=agent, **values)
    except IdempotencyKeyTaken as taken:
        # Each form carries its own key: the same form sent twice (a double click) was logged the first time.
        first = taken.action
        if (first.decision_id, first.kind, first.offer_code) != (decision.pk, values["kind"], values["offer_code"]):
            raise ValidationError(
                "this form was already used for another action: reload the panel", code=FORM_USED_FOR_ANOTHER_ACTION
            ) from None
        return first


def _form_problems(form: DecisionActionForm) -> list[str]:
    """What is wrong with the form, each field named as the agent knows it."""
    problems = []
    for field, errors in form.errors.items():
        name = FORM_FIELDS_IN_AGENT_LANGUAGE.get(field)
        problems.append(f"{name}: {' '.join(errors)}" if name else str(FORM_NOT_READ))
    return problems


def _problems(error: ValidationError, decision: Decision | None) -> list[str]:
    """The service's refusal in the agent's language, however it was raised: for one field, several, or none."""
    if hasattr(error, "error_dict"):
        coded = [problem for problems in error.error_dict.values() for problem in problems]
    else:
        coded = error.error_list
    return [_problem(problem, decision) for problem in coded]


def _problem(problem: ValidationError, decision: Decision | None) -> str:
    words = REFUSALS_IN_AGENT_LANGUAGE.get(problem.code)
    if words is None:
        # A refusal the panel has no words for is a gap to fill, not something the agent should meet quietly.
        logger.error("panel refusal without words in the agent's language: code %r: %s", problem.code, problem.message)
        return " ".join(problem.messages)
    params = dict(problem.params or {})
    params["offer"] = _offer_title(decision, params.get("offer", ""))
    if "left" in params:
        params["left"] = euro(params["left"])
    return str(words) % params


def _offer_title(decision: Decision | None, code: str) -> str:
    """The offer's title in the agent's language: as the advice ranked it, else as the catalog has it now (a code
    sent that the advice never ranked), else the code as sent."""
    title = (decision.offer(code) or {}).get("title") if decision is not None else None
    if title is None and code:
        title = offer_titles_in_catalog(code)
    return in_language(title, fallback=code)


def _for_an_administrator(request: HttpRequest, decision: Decision, offer_code: str) -> bool:
    """Who an escalation waits for: the team's lead, unless the one asking leads the team, the team has no lead, or
    the offer is above the authority of every lead of the team."""
    profile = agent_profile_of(request.user)
    if leads_team_of(profile, decision):
        return True
    lead_level = team_lead_level(decision.team_id or profile.team_id)
    if not lead_level:
        return True
    offer = decision.offer(offer_code)
    return offer is not None and not decides_escalation(lead_level, offer)


def _action_logged(request: HttpRequest, decision: Decision, action: DecisionAction) -> HttpResponse:
    feedback = _("Logged: %(action)s.") % {"action": labels.label(labels.ACTION_KINDS, action.kind)}
    if action.kind == DecisionAction.Kind.ESCALATED:
        if _for_an_administrator(request, decision, action.offer_code):
            feedback += " " + _("An administrator finds it under Escalations in the review pages.")
        else:
            feedback += " " + _("Your team lead finds it under Escalations in the review pages.")
    elif action.kind == DecisionAction.Kind.NO_ACTION and _still_escalated(decision):
        feedback += " " + _("What waits for an administrator stays open for them.")
    if request.htmx:
        return _decision_fragment(request, decision, feedback=feedback)
    messages.success(request, feedback)
    return _back_to_the_offers(decision)


def _still_escalated(decision: Decision) -> bool:
    return escalation_open(decision_actions(decision=decision), now=timezone.now(), offers=decision.offers)


def _action_refused(request: HttpRequest, decision: Decision, problems: list[str]) -> HttpResponse:
    error = _("Not logged: %(problem)s") % {"problem": " ".join(problems)}
    if request.htmx:
        # 422 keeps it an error for every client; the page's htmx configuration still shows this fragment.
        return _decision_fragment(request, decision, error=error, status=422)
    messages.error(request, error)
    return _back_to_the_offers(decision)


def _back_to_the_offers(decision: Decision) -> HttpResponse:
    """Without scripts, the page after an action opens at the offers, where its message is shown: at 380 px the top
    of the page is screens away from them."""
    return HttpResponseRedirect(panel_url(customer=decision.customer, decision_id=decision.pk) + "#decision")


def _decision_fragment(request: HttpRequest, decision: Decision, *, status: int = 200, **feedback) -> HttpResponse:
    if decision.customer.objects_to_profiling:
        # Advice made before the objection is not shown again, not even beside a refusal: the panel shows the
        # customer as they now are, which says why.
        return HttpResponse(headers={"HX-Redirect": customer_panel_address(decision.customer.external_id)})
    context = {**decision_context(request, decision), **feedback}
    return render(request, DECISION_FRAGMENT, context, status=status)


# --- the user's language ------------------------------------------------------------------------


@require_POST
@agent_required
def language(request: HttpRequest) -> HttpResponse:
    """Switch the pages' language for this user, then back to the page the switch was on."""
    try:
        agent_language_set(user=request.user, language=request.POST.get("language", ""))
    except ValidationError:
        return forbidden(request, _("That language is not offered here."))
    return _back_to_the_page(request)


@require_POST
@agent_required
def shortcuts(request: HttpRequest) -> HttpResponse:
    """Turn this user's single-key shortcuts on or off (WCAG 2.1.4), then back to the page the switch was on."""
    choice = request.POST.get("shortcuts", "")
    if choice not in ("on", "off"):
        return forbidden(request, _("Shortcuts are turned on or off, nothing else."))
    agent_shortcuts_set(user=request.user, on=choice == "on")
    return _back_to_the_page(request)


def _back_to_the_page(request: HttpRequest) -> HttpResponse:
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return HttpResponseRedirect(back if safe and back else reverse("panel"))
