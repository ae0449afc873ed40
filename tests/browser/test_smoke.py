import pytest

pytestmark = pytest.mark.browser


def test_sign_in_page_renders_in_chromium(live_server, page):
    page.goto(f"{live_server.url}/sign-in")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    assert page.get_by_label("Email").is_visible()
