"""`manage.py create_api_client`: a token shown once, the scopes asked for, and optionally the teams it speaks for."""

import io

import pytest
from django.core.management import CommandError, call_command

from retention.models import ApiClient

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("create_api_client", *args, stdout=out)
    return out.getvalue()


def test_a_client_is_created_with_its_scopes_for_every_team_by_default(team):
    output = run("crm", "--scopes", "read,write_outcomes")

    client = ApiClient.objects.get(name="crm")
    assert client.scopes == ["read", "write_outcomes"]
    assert not client.teams.exists()
    assert "API client 'crm' with scopes read, write_outcomes, for every team" in output
    token = output.strip().splitlines()[-1]
    assert token.startswith(client.token_prefix) and token not in (client.token_hash,)


def test_a_client_may_be_bound_to_teams(team, other_team):
    output = run("crm", "--scopes", "score", "--team", "Team Utrecht", "--team", "Team Rotterdam")

    assert set(ApiClient.objects.get().teams.values_list("name", flat=True)) == {"Team Utrecht", "Team Rotterdam"}
    assert "for Team Rotterdam, Team Utrecht" in output


def test_an_unknown_team_is_refused_naming_the_known_ones(team):
    with pytest.raises(CommandError, match="teams: unknown team\\(s\\) Team Gouda; known: Team Utrecht"):
        run("crm", "--scopes", "score", "--team", "Team Gouda")
    assert not ApiClient.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("crm", "--scopes", "read"), "name: Api client with this Name already exists."),
        (("", "--scopes", "read"), "name: This field cannot be blank."),
        (
            ("other", "--scopes", ""),
            "scopes: none given; choose from erase_customers, read, score, write_customers, write_outcomes",
        ),
    ],
)
def test_refusals_are_in_english_whatever_the_sites_language(team, args, message):
    run("crm", "--scopes", "read")

    with pytest.raises(CommandError) as refused:
        run(*args)

    assert str(refused.value) == message
    assert ApiClient.objects.count() == 1
