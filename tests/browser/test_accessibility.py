"""The automatic axe-core check itself: it sees a page's violations after a load and after a change
without one, and a form sent while the check runs is held until it ends, then sent as it was."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

BROKEN = """<!doctype html><html lang="en"><head><title>Broken</title></head><body><main>
<h1>Broken</h1><form method="post" action="/sent"><input name="who" value="ann"><button name="go" value="yes">Send</button></form>
<p style="color:#aaa;background:#fff">Too faint to read</p></main></body></html>"""
FIXED = (
    BROKEN.replace("color:#aaa", "color:#333")
    .replace('<input name="who"', '<label>Who <input name="who"')
    .replace('value="ann">', 'value="ann"></label>')
)


def serve(page, path: str, html: str) -> None:
    page.route(f"**{path}", lambda route: route.fulfill(status=200, content_type="text/html", body=html))


def test_a_loaded_page_with_violations_is_reported_with_rule_page_and_element(page, accessibility):
    serve(page, "/broken", BROKEN)
    page.goto("/broken")
    page.goto("about:blank")  # leaving waits for the check of the page left
    found = {(v.rule, v.url) for v in accessibility.violations}
    assert ("label", "/broken") in found and ("color-contrast", "/broken") in found
    assert any("input" in t for v in accessibility.violations if v.rule == "label" for t in v.targets)
    accessibility.violations.clear()  # found on purpose: this test must not fail for them


def test_a_change_without_a_load_is_checked_on_demand(page, accessibility):
    serve(page, "/fixed", FIXED)
    page.goto("/fixed")
    assert accessibility.check(page) == []
    page.evaluate("document.querySelector('label').replaceWith(document.querySelector('input'))")
    assert [v.rule for v in accessibility.check(page)] == ["label"]
    accessibility.violations.clear()


def test_a_form_sent_during_the_check_is_sent_after_it_with_its_button(page):
    serve(page, "/form", FIXED.replace("<title>Broken", "<title>Form"))
    sent = []

    def answer(route):
        sent.append(route.request.post_data)
        route.fulfill(status=200, content_type="text/html", body=FIXED.replace("Broken", "Sent"))

    page.route("**/sent", answer)
    page.goto("/form")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="Sent")).to_be_visible()
    assert sent == ["who=ann&go=yes"]
