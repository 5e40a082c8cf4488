"""Who sees what, in the browser: outsiders get the login page and then a 403 without customer data."""

import pytest
from playwright.sync_api import expect

from retention.models import Decision
from tests.browser.pages import LOGIN_WORDS, log_in

pytestmark = pytest.mark.browser


def test_an_outsider_sees_the_login_page_and_then_only_a_403_without_customer_data(
    open_page, screenshot, outsider, customer
):
    page = open_page()

    response = page.goto(f"/panel/?customer={customer.external_id}")

    assert "/login/" in page.url and response.status == 200
    expect(page.get_by_role("button", name=LOGIN_WORDS.log_in)).to_be_visible()
    expect(page.locator("main")).not_to_contain_text(customer.display_name)

    log_in(page, "outsider", path=f"/panel/?customer={customer.external_id}")

    expect(page.get_by_role("heading", level=1)).to_have_text("Geen toegang")
    expect(page.locator("body")).not_to_contain_text(customer.display_name)
    expect(page.get_by_role("search")).to_have_count(0)
    assert page.request.get(page.url).status == 403
    assert not Decision.objects.exists()
    screenshot(page, "forbidden-380-nl")
