"""A single-page app for the browser tests: a public OpenID Connect client whose JavaScript, in
Chromium, does the whole code flow with PKCE itself (``crypto.subtle`` for S256, ``fetch`` for the
token and userinfo endpoints). Its server only hands out one page and one script, so everything
it learns crosses origins as a real browser app's would, under Chromium's CORS checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

SCRIPT = """
const config = JSON.parse(document.getElementById("config").textContent);
const status = (text) => { document.getElementById("status").textContent = text; };

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
}

async function signIn() {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem("verifier", verifier);
  sessionStorage.setItem("state", state);
  const query = new URLSearchParams({
    response_type: "code", client_id: config.client_id, redirect_uri: config.redirect_uri,
    scope: "openid email profile", state, code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${config.issuer}/authorize?${query}`);
}

async function finish(params) {
  if (params.get("state") !== sessionStorage.getItem("state")) return status("error: state does not match");
  try {
    const answer = await fetch(`${config.issuer}/token`, {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "authorization_code", code: params.get("code"), redirect_uri: config.redirect_uri,
        client_id: config.client_id, code_verifier: sessionStorage.getItem("verifier"),
      }),
    });
    const tokens = await answer.json();
    if (!answer.ok) return status(`error: ${tokens.error}`);
    const claims = await (await fetch(`${config.issuer}/userinfo`, {
      headers: { Authorization: `Bearer ${tokens.access_token}` },
    })).json();
    document.getElementById("who").textContent = claims.email;
    window.accessToken = tokens.access_token;
    status("signed in");
  } catch (error) {
    status(`error: ${error.name}`);  // a CORS refusal reaches the script only as a TypeError
  }
}

document.getElementById("sign-in").addEventListener("click", signIn);
const params = new URLSearchParams(location.search);
if (params.has("code")) finish(params); else status(params.get("error") || "signed out");
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Appointments</title></head>
<body><main><h1>Appointments</h1>
<p id="status">loading</p><p id="who"></p>
<button id="sign-in" type="button">Sign in with Twofold</button>
<script id="config" type="application/json">{config}</script>
<script src="/app.js"></script></main></body></html>
"""


@dataclass
class SinglePageApp:
    """The app's server: the same page at ``/`` and ``/callback``, and its script. ``client_id`` and
    ``redirect_uri`` may be set once it is served (the redirect URI holds its port)."""

    issuer: str
    client_id: str = ""
    redirect_uri: str = ""

    def app(self) -> Starlette:
        async def page(request):
            config = {"issuer": self.issuer, "client_id": self.client_id, "redirect_uri": self.redirect_uri}
            return HTMLResponse(PAGE.format(config=json.dumps(config).replace("<", "\\u003c")))

        async def script(request):
            return Response(SCRIPT, media_type="text/javascript")

        return Starlette(routes=[Route("/", page), Route("/callback", page), Route("/app.js", script)])
