"""Play retention calls on the synthetic base, so the offer log, the review pages and the fairness report have
calls to show: the agents ask for advice through the panel's services and the customers answer from their truth."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ml.registry import NoChampion
from ml.simulate import SOON_DAYS
from retention.management import arguments
from retention.models import AgentProfile
from retention.services.decisions import takes_calls
from retention.services.simulation import calls_play


class Command(BaseCommand):
    help = (
        "Play N retention calls on the synthetic base: each of the agents in turn asks for advice on a customer "
        "whose contract ends soon, makes the recommended offer (an insistent customer sometimes gets the dearest "
        "the agent may make), and the customer answers as their hidden truth says. Needs generate_customers and "
        "a churn model (train_models) first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--calls", type=arguments.positive_int, default=200, help="How many calls (default 200).")
        parser.add_argument(
            "--seed", type=arguments.seed, default=0, help="Random seed: which customers call, what they say."
        )
        parser.add_argument(
            "--agent",
            action="append",
            dest="agents",
            metavar="USERNAME",
            help="An agent taking the calls (repeat for more; default: every active user in the agent role).",
        )

    def handle(self, *args, calls: int, seed: int, agents: list[str] | None, **options):
        try:
            summary = calls_play(calls=calls, seed=seed, agents=_agents(agents))
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        except NoChampion as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"Played {summary.calls} calls in {summary.seconds:.1f} s: {summary.presented} offers made "
            f"({summary.insisted} at the customer's insistence), {summary.accepted} accepted, "
            f"{summary.declined} declined; {summary.calls - summary.presented} calls without an offer."
        )
        if summary.calls < calls:
            self.stdout.write(
                f"Only {summary.calls} of the {calls} calls asked for: no more customers whose contract ends within "
                f"{SOON_DAYS} days are left without advice."
            )


def _agents(usernames: list[str] | None) -> list:
    users = get_user_model().objects.filter(is_active=True, agent_profile__isnull=False).order_by("username")
    if usernames is None:
        return [user for user in users.filter(agent_profile__role=AgentProfile.Role.AGENT) if takes_calls(user)]
    found = {user.username: user for user in users.filter(username__in=usernames)}
    if missing := [name for name in usernames if name not in found]:
        raise CommandError(f"no active user with an agent profile named {', '.join(map(repr, missing))}")
    if admins := [name for name in usernames if not takes_calls(found[name])]:
        raise CommandError(f"{', '.join(map(repr, admins))}: administrators do not take calls; name agents or leads")
    return [found[name] for name in usernames]
