"""axe-core on every page state the browser tests reach (WCAG 2.0, 2.1 and 2.2, levels A and AA).

Every browser context a test makes gets an init script: axe-core (the copy bundled in the
axe-playwright-python package, read from disk) and a small runner that checks each page once it
has loaded and reports the violations to Python through a binding. A form sent or a link followed
while that check runs waits for it (so a test that moves on at once still has the page checked),
and so do ``page.goto``, ``reload``, ``go_back``, ``go_forward`` and closing a page or context.
``check(page)`` checks the page as it is now, for states reached without a load (a revealed QR
code, an opened dialog). The ``accessibility`` fixture (tests/browser/conftest.py) fails the test
at teardown with every violation found: rule, page and the elements. ``excuse`` drops one rule on
one page, with a written reason, where the page cannot pass it.

A page whose markup (numbers and random tokens left out) was already checked in this session is
not checked again: most tests pass through the same sign-in pages.

What is not checked: a page left by a script (``location`` or ``form.submit()``) before its check
ends, and JSON or file answers (not HTML pages).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import axe_playwright_python
from playwright.sync_api import Browser, BrowserContext, Error, Page

AXE_SOURCE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]

RUNNER = """
(() => {
  if (window.top !== window || !/^https?:$/.test(location.protocol) || document.contentType !== 'text/html') return;
  const options = {runOnly: {type: 'tag', values: TAGS}, resultTypes: ['violations']};
  const run = () => axe.run(document, options).then((result) => result.violations.map((v) => ({
    id: v.id, help: v.help, targets: v.nodes.map((node) => node.target.join(' '))})));
  let queue = Promise.resolve();
  const check = () => (queue = queue.then(run, run));  // axe refuses a run while one is going
  let pending = false;
  let held = false;  // a form or link held during the check: it is sent again once the check ends
  let settled = Promise.resolve(null);
  window.__twofoldAxeCheck = check;
  window.__twofoldAxeSettled = () => settled.then(() => held);
  const markup = () => location.pathname + '\\n' + document.documentElement.outerHTML
    .replace(/[A-Za-z0-9_-]{16,}/g, 'T').replace(/[0-9]+/g, '0');
  window.addEventListener('load', () => {
    pending = true;
    settled = window.__twofoldAxeSeen(markup())
      .then((seen) => (seen ? null : check().then((found) => window.__twofoldAxeReport(location.href, found))))
      .catch((error) => window.__twofoldAxeReport(location.href, [{id: 'axe-error', help: String(error), targets: []}]))
      .finally(() => { pending = false; });
  });
  window.addEventListener('submit', (event) => {
    if (!pending) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    held = true;
    const form = event.target, submitter = event.submitter;
    settled.then(() => form.requestSubmit(submitter || undefined));
  }, true);
  window.addEventListener('click', (event) => {
    const link = pending && event.target.closest ? event.target.closest('a[href]') : null;
    if (!link) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    held = true;
    settled.then(() => link.click());
  }, true);
})();
""".replace("TAGS", json.dumps(WCAG_TAGS))

# Resolves once the check of the page's last load ends: true when a form or link held meanwhile has
# just been sent again (its navigation has begun).
SETTLED = "() => window.__twofoldAxeSettled ? window.__twofoldAxeSettled() : false"


@dataclass(frozen=True)
class Violation:
    rule: str
    help: str
    url: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.rule} ({self.help}) on {self.url}: {', '.join(self.targets) or '-'}"


@dataclass
class Accessibility:
    """The violations found during one test."""

    seen: set[str]
    violations: list[Violation] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> None:
        self.contexts.append(context)
        context.add_init_script(AXE_SOURCE + RUNNER)
        context.expose_binding("__twofoldAxeSeen", lambda _source, markup: self._seen_before(markup))
        context.expose_binding("__twofoldAxeReport", lambda _source, url, found: self.record(url, found))

    def _seen_before(self, markup: str) -> bool:
        key = hashlib.sha256(markup.encode()).hexdigest()
        if key in self.seen:
            return True
        self.seen.add(key)
        return False

    def record(self, url: str, found: list[dict]) -> None:
        for v in found:
            violation = Violation(v["id"], v["help"], re.sub(r"^https?://[^/]+", "", url), tuple(v["targets"]))
            if violation not in self.violations:
                self.violations.append(violation)

    def check(self, page: Page) -> list[Violation]:
        """axe on the page as it is now (after a change without a load); returns and records what it finds."""
        before = len(self.violations)
        self.record(page.url, page.evaluate("() => window.__twofoldAxeCheck()"))
        return self.violations[before:]

    def excuse(self, rule: str, url: str, *, why: str) -> None:
        """Drop the violations of ``rule`` found on ``url`` (a path) in this test; ``why`` says why
        the page cannot pass it and must not be empty."""
        if not why.strip():
            raise ValueError("an excused violation needs a reason")
        self.settle()
        self.violations = [v for v in self.violations if not (v.rule == rule and v.url == url)]

    def settle(self) -> None:
        """Wait for the checks still running in every context the test left open."""
        for context in self.contexts:
            for page in context.pages:
                settle(page)

    def report(self) -> str:
        lines = [f"{len(self.violations)} accessibility violation(s) (axe-core, WCAG 2.2 AA):"]
        return "\n".join([*lines, *(f"  {v}" for v in self.violations)])


def settle(page: Page) -> None:
    """Wait for the check of the page's last load (nothing to wait for on a closed or moving page), and
    for the page that a form or link held during the check leads to: a test that goes elsewhere next
    would otherwise abort that navigation, or have its own aborted by it."""
    try:
        if page.is_closed() or not page.evaluate(SETTLED):
            return
        page.wait_for_event("load", timeout=10_000)
    except Error:
        pass


def instrument(monkeypatch, audit: Accessibility) -> None:
    """Every context made through Playwright's ``Browser`` during the test is watched by ``audit``,
    and leaving or closing a page waits for its check."""
    new_context = Browser.new_context

    def watched_context(browser, *args, **kwargs):
        context = new_context(browser, *args, **kwargs)
        audit.watch(context)
        return context

    monkeypatch.setattr(Browser, "new_context", watched_context)
    new_page = Browser.new_page

    def watched_page(browser, *args, **kwargs):
        page = new_page(browser, *args, **kwargs)
        audit.watch(page.context)  # its first document is about:blank: later ones are checked
        return page

    monkeypatch.setattr(Browser, "new_page", watched_page)

    def settling(method):
        def wrapper(page, *args, **kwargs):
            settle(page)
            return method(page, *args, **kwargs)

        return wrapper

    for name in ("goto", "reload", "go_back", "go_forward", "close"):
        monkeypatch.setattr(Page, name, settling(getattr(Page, name)))
    close_context = BrowserContext.close

    def settled_close(context, *args, **kwargs):
        for page in context.pages:
            settle(page)
        return close_context(context, *args, **kwargs)

    monkeypatch.setattr(BrowserContext, "close", settled_close)
