"""A real relying party for the OpenID Connect tests: a small Starlette app signing its users in
through Twofold with Authlib's own client (``authlib.integrations.starlette_client``).

Every check the library makes is on: discovery, the ID token's RS256 signature against the JWKS,
``iss``, ``aud``, ``exp``/``iat``, ``nonce``, ``at_hash``, and PKCE (S256) with ``state``. It also
checks RFC 9207's ``iss`` in the authorisation response, which Authlib's client leaves to the app.
Its session store is a dict in memory behind a random cookie (the app is a test double of an EHR
add-on, not a product).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import Route

COOKIE = "rp_session"


class _MemorySessions:
    """Starlette's ``request.session`` without itsdangerous: the data stays in this process."""

    def __init__(self, app, store: dict[str, dict]) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        sid = request.cookies.get(COOKIE)
        if not sid or sid not in self.store:
            sid = secrets.token_urlsafe(16)
            self.store[sid] = {}
        scope["session"] = self.store[sid]

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"].append((b"set-cookie", f"{COOKIE}={sid}; Path=/; HttpOnly".encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


@dataclass
class RelyingParty:
    issuer: str
    client_id: str
    client_secret: str | None
    scope: str = "openid email profile groups offline_access"
    base_url: str = ""  # set once served
    sessions: dict[str, dict] = field(default_factory=dict)
    # What the app saw, for the test to read: the last token answer and the validated ID token claims.
    last_token: dict[str, Any] | None = None
    last_claims: dict[str, Any] | None = None
    # Back-channel logouts: the sid of each one accepted, and the reason of each one refused.
    logged_out_sids: list[str] = field(default_factory=list)
    refused_logouts: list[str] = field(default_factory=list)

    def client(self):
        """Authlib's client for Twofold, registered from discovery (made on first use: the test
        registers the app at Twofold once it knows where this app is served)."""
        oauth = OAuth()
        kwargs: dict[str, Any] = {"scope": self.scope, "code_challenge_method": "S256"}
        if self.client_secret is None:
            kwargs["token_endpoint_auth_method"] = "none"
        oauth.register(
            "twofold",
            client_id=self.client_id,
            client_secret=self.client_secret,
            server_metadata_url=f"{self.issuer}/.well-known/openid-configuration",
            client_kwargs=kwargs,
        )
        return oauth.create_client("twofold")

    def app(self) -> Starlette:
        made: list = []

        def twofold_client():
            if not made:
                made.append(self.client())
            return made[0]

        async def login(request: Request):
            extra = {k: v for k, v in request.query_params.items() if k in ("prompt", "max_age")}
            return await twofold_client().authorize_redirect(request, f"{self.base_url}/callback", **extra)

        async def callback(request: Request):
            if request.query_params.get("iss") != self.issuer:  # RFC 9207 §2.4
                return _page("<h1>App error</h1><p id='error'>wrong_issuer</p>", status_code=400)
            try:
                token = await twofold_client().authorize_access_token(request)
            except OAuthError as error:
                return _page(f"<h1>App error</h1><p id='error'>{error.error}</p>", status_code=400)
            self.last_token = dict(token)
            self.last_claims = dict(token["userinfo"])
            request.session["claims"] = self.last_claims
            request.session["id_token"] = token.get("id_token")
            return RedirectResponse("/", status_code=303)

        async def home(request: Request):
            claims = request.session.get("claims")
            if not claims:
                return _page("<h1>Welcome</h1><p id='who'>not signed in</p><a href='/login'>Sign in</a>")
            return _page(
                f"<h1>Patient records</h1><p id='who'>{claims.get('name')} ({', '.join(claims.get('groups', []))})</p>"
                f"<p id='amr'>{' '.join(claims.get('amr', []))}</p><a href='/logout'>Sign out</a>"
            )

        async def claims(request: Request):
            return JSONResponse(request.session.get("claims") or {})

        async def logout(request: Request):
            id_token = request.session.pop("id_token", None)
            request.session.pop("claims", None)
            return await twofold_client().logout_redirect(
                request, post_logout_redirect_uri=f"{self.base_url}/signed-out", id_token_hint=id_token
            )

        async def backchannel_logout(request: Request):
            """OpenID Connect Back-Channel Logout 1.0 §2.6: check the logout token against Twofold's
            keys, then end every session of this app with its ``sid``."""
            form = await request.form()
            try:
                keys = KeySet.import_key_set(await twofold_client().fetch_jwk_set(force=True))
                token = jwt.decode(str(form.get("logout_token", "")), keys, algorithms=["RS256"])
                registry = jwt.JWTClaimsRegistry(
                    leeway=120,  # clock skew between servers, as an app allows for ID tokens
                    iss={"essential": True, "value": self.issuer},
                    aud={"essential": True, "value": self.client_id},
                    sid={"essential": True},
                    iat={"essential": True},
                    exp={"essential": True},
                )
                registry.validate(token.claims)
                if token.header.get("typ") != "logout+jwt" or "nonce" in token.claims:
                    raise ValueError("not a logout token")
                if "http://schemas.openid.net/event/backchannel-logout" not in token.claims.get("events", {}):
                    raise ValueError("no back-channel logout event")
            except (JoseError, ValueError) as error:
                self.refused_logouts.append(f"{type(error).__name__}: {error}")
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            sid = token.claims["sid"]
            for data in list(self.sessions.values()):
                if (data.get("claims") or {}).get("sid") == sid:
                    data.clear()
            self.logged_out_sids.append(sid)
            return JSONResponse({}, headers={"Cache-Control": "no-store"})

        async def signed_out(request: Request):
            try:
                await twofold_client().validate_logout_response(request)
            except OAuthError as error:
                return _page(f"<p id='error'>{error.error}</p>", status_code=400)
            return _page("<h1>Signed out</h1><p id='who'>signed out</p>")

        routes = [
            Route("/", home),
            Route("/login", login),
            Route("/callback", callback),
            Route("/claims", claims),
            Route("/logout", logout),
            Route("/signed-out", signed_out),
            Route("/backchannel-logout", backchannel_logout, methods=["POST"]),
        ]
        app = Starlette(routes=routes)
        return _MemorySessions(app, self.sessions)  # type: ignore[return-value]


def _page(body: str, status_code: int = 200) -> HTMLResponse:
    """The app's pages: a whole HTML document (language and title), as the accessibility check expects."""
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><title>Patient records</title></head><body><main>{body}</main></body></html>',
        status_code=status_code,
    )
