"""Helpers for the OpenID Connect tests: PKCE pairs, and a browser-like walk through Twofold's
authorisation (redirects, the sign-in form, the code step, the page that moves on to the app)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from tests.support.base import Member
from twofold.context import RequestContext

REFRESH = re.compile(r'http-equiv="refresh" content="0;url=([^"]+)"')
FLOW = re.compile(r"/sign-in/([A-Za-z0-9_-]+)/code$")


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636 §4.1, §4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class App:
    client_id: str
    client_secret: str | None
    redirect_uri: str
    app_id: int


def register_app(
    services,
    practice_id: int,
    *,
    public: bool = False,
    roles=None,
    redirect_uri=None,
    logout_uri=None,
    backchannel_logout_uri=None,
    name="Patient Records",
):
    """An app of the practice (signed in to only by OpenID Connect) with its client registered."""
    redirect_uri = redirect_uri or "https://records.example/callback"
    view = services.apps.add_app(
        practice_id=practice_id,
        actor_id=None,
        name=name,
        url=None,
        url_required=False,
        allowed_roles=roles,
        context=RequestContext(),
    )
    made = services.oidc_clients.register(
        practice_id=practice_id,
        app_id=view.id,
        redirect_uris=[redirect_uri],
        post_logout_redirect_uris=[logout_uri or "https://records.example/signed-out"],
        public=public,
        backchannel_logout_uri=backchannel_logout_uri,
        context=RequestContext(),
    )
    return App(made.client.client_id, made.client_secret, redirect_uri, view.id)


def walk(browser: httpx.Client, url: str, *, stop_at: str | None = None, hops: int = 20) -> httpx.Response:
    """GET ``url`` and follow redirects and self-moving pages, until a page, or a redirect to ``stop_at``."""
    for _ in range(hops):
        response = browser.get(url, follow_redirects=False)
        if response.is_redirect:
            url = urljoin(str(response.url), response.headers["location"])
            if stop_at and url.startswith(stop_at):
                return response
            continue
        moving = REFRESH.search(response.text) if response.status_code == 200 else None
        if moving:
            url = html.unescape(moving.group(1))
            if stop_at and url.startswith(stop_at):
                response.headers["location"] = url  # read the same way as a redirect
                return response
            continue
        return response
    raise AssertionError("too many redirects")


def sign_in_on_page(browser: httpx.Client, page: httpx.Response, member: Member, clock) -> httpx.Response:
    """Fill Twofold's sign-in form shown by ``page`` (and the code step); the answer to the last POST."""
    next_value = re.search(r'name="next" value="([^"]*)"', page.text)
    form = {"email": member.email, "password": member.password, "next": html.unescape(next_value.group(1))}
    base = f"{page.url.scheme}://{page.url.netloc.decode()}"
    answer = browser.post(f"{base}/sign-in", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    if FLOW.search(location):
        code = {"method": "totp", "code": member.code(clock)}
        answer = browser.post(urljoin(base, location), data=code, follow_redirects=False)
        assert answer.status_code == 303, answer.text
    return answer


def authorize(
    browser: httpx.Client,
    base: str,
    app: App,
    member: Member | None,
    clock,
    **params: str,
) -> dict[str, str]:
    """Run an authorisation request (signing ``member`` in when Twofold asks); the app's redirect's query."""
    query = {"response_type": "code", "client_id": app.client_id, "redirect_uri": app.redirect_uri}
    query.update({"scope": "openid email profile groups offline_access", "state": secrets.token_urlsafe(8)})
    query.update(params)
    response = walk(browser, f"{base}/authorize?{urlencode(query)}", stop_at=app.redirect_uri)
    if (
        not response.is_redirect
        and "location" not in response.headers
        and urlsplit(str(response.url)).path == ("/sign-in")
    ):
        if member is None:
            raise AssertionError("Twofold asked for a sign-in")
        answer = sign_in_on_page(browser, response, member, clock)
        response = walk(browser, urljoin(base, answer.headers["location"]), stop_at=app.redirect_uri)
    location = response.headers.get("location")
    assert location and location.startswith(app.redirect_uri), (response.status_code, response.text[:500])
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(
    browser: httpx.Client, base: str, app: App, code: str, verifier: str | None, *, headers=None, **extra
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri, **extra}
    if verifier is not None:
        form["code_verifier"] = verifier
    auth = (app.client_id, app.client_secret) if app.client_secret else None
    if auth is None:
        form["client_id"] = app.client_id
    return browser.post(f"{base}/token", data=form, auth=auth, headers=headers)
