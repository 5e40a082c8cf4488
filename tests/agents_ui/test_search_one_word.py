"""A search that finds nobody because a name needs two words says what to type instead."""

import pytest

from retention.models import AgentProfile
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

DUTCH_HINT = "Zoek een naam op met twee woorden of meer, zoals voor- en achternaam"
ENGLISH_HINT = "Search a name by two words or more, such as first and last name"


@pytest.fixture
def stefan(db):
    return CustomerFactory(external_id="C-2002", display_name="Stefan de Boer", phone="+31 6 8765 4321")


@pytest.mark.parametrize(("language", "nobody", "hint"), [
    ("nl", "Geen klant gevonden voor „Stefan”.", DUTCH_HINT),
    ("en", "No customer found for “Stefan”.", ENGLISH_HINT),
])  # fmt: skip
def test_a_one_word_name_finds_nobody_and_says_a_name_needs_two_words(logged_in, agent, stefan, language, nobody, hint):
    AgentProfile.objects.filter(user=agent).update(language=language)

    page = logged_in(agent).post("/panel/", {"q": "Stefan"}, follow=True).text

    assert nobody in page
    assert hint in page
    assert "Stefan de Boer" not in page


def test_the_same_name_in_two_words_finds_the_customer(logged_in, agent, stefan):
    page = logged_in(agent).post("/panel/", {"q": "Stefan de Boer"}, follow=True).text

    assert "C-2002" in page
    assert DUTCH_HINT not in page


@pytest.mark.parametrize("query", ["Stefan de Wit", "12345", "06-1111 2222"])
def test_a_search_of_two_words_a_number_or_a_phone_that_finds_nobody_gives_no_hint_about_names(
    logged_in, agent, stefan, query
):
    page = logged_in(agent).post("/panel/", {"q": query}, follow=True).text

    assert "Geen klant gevonden voor" in page
    assert DUTCH_HINT not in page
