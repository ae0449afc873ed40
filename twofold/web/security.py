"""Request-level protections, as one pure ASGI middleware (no per-request task overhead).

- Refuses state-changing requests from another site with 403: ``Sec-Fetch-Site``
  ``cross-site`` or ``same-site``, or an ``Origin`` that is not ours. Requests
  with neither header (API clients, curl) pass: they carry no ambient cookies
  a browser would attach on an attacker's behalf.
  Paths whose callers authenticate with credentials rather than cookies (an app calling the
  OpenID Connect token endpoint from a browser) are exempt: no ambient authority to abuse.
- Refuses bodies over the configured size with 413, before the app reads them.
- Adds a strict CSP and the usual security headers to every answer.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cache-control", b"no-store"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def is_our_origin(url: str, *, host: str, public_origin: str | None) -> bool:
    """True when ``url`` (an ``Origin``, or a ``Referer``'s scheme and host) is this site's origin:
    ``TWOFOLD_PUBLIC_ORIGIN`` when set, else the request's own host over http or https."""
    url = url.strip()
    if not url or url == "null":
        return False
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if public_origin:
        return origin == public_origin.rstrip("/")
    return bool(host) and parts.netloc == host and parts.scheme in ("http", "https")


def is_same_origin_read(headers, *, public_origin: str | None) -> bool:
    """A GET that may answer with something the user did not ask for from another site (an export).

    Browsers send ``Sec-Fetch-Site`` (Fetch Metadata): only ``same-origin`` (a link on our pages)
    and ``none`` (typed or bookmarked by the user) pass. An older browser without it is judged
    by ``Origin`` or ``Referer`` (our pages send a same-origin referrer). A request with none of
    the three is a script or API client, which carries no cookie a browser attached for an attacker.
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site.strip().lower() in ("same-origin", "none")
    host = headers.get("host", "")
    for name in ("origin", "referer"):
        value = headers.get(name)
        if value is not None:
            return is_our_origin(value, host=host, public_origin=public_origin)
    return True


def _error_body(error: str, message: str) -> bytes:
    return json.dumps({"error": error, "message": message}).encode()


class SecurityMiddleware:
    def __init__(
        self,
        app,
        *,
        max_body_bytes: int,
        public_origin: str | None,
        hsts: bool,
        credential_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.credential_paths = credential_paths
        self.max_body_bytes = max_body_bytes
        self.public_origin = public_origin.rstrip("/") if public_origin else None
        self.hsts = hsts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {}
        for name, value in scope["headers"]:
            headers[name] = value
        method = scope["method"]
        if (
            method not in SAFE_METHODS
            and scope["path"] not in self.credential_paths
            and not self._same_origin(scope, headers)
        ):
            await self._refuse(send, 403, "cross_origin_refused", "Requests from another site are not accepted.")
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body_bytes
            except ValueError:
                await self._refuse(send, 400, "bad_request", "The Content-Length header is not a number.")
                return
            if too_big:
                await self._refuse(
                    send, 413, "body_too_large", f"The request body is over {self.max_body_bytes} bytes."
                )
                return
            guarded_receive = receive
        else:
            guarded_receive = self._limited(receive)
        refused = False

        async def send_with_headers(message) -> None:
            nonlocal refused
            if getattr(guarded_receive, "exceeded", False):
                # The app caught our "too large" while parsing and answered 400 itself: say 413 instead.
                if not refused:
                    refused = True
                    await self._refuse(
                        send, 413, "body_too_large", f"The request body is over {self.max_body_bytes} bytes."
                    )
                return
            if message["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                if self.hsts:
                    extra.append(HSTS)
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in extra if h[0] not in present]
            await send(message)

        try:
            await self.app(scope, guarded_receive, send_with_headers)
        except _BodyTooLarge:
            if not refused:
                await self._refuse(
                    send, 413, "body_too_large", f"The request body is over {self.max_body_bytes} bytes."
                )

    def _limited(self, receive) -> _LimitedReceive:
        return _LimitedReceive(receive, self.max_body_bytes)

    def _same_origin(self, scope, headers: dict[bytes, bytes]) -> bool:
        site = headers.get(b"sec-fetch-site")
        if site is not None and site.decode("latin-1").lower() in ("cross-site", "same-site"):
            return False
        origin = headers.get(b"origin")
        if origin is None:
            return True
        host = headers.get(b"host", b"").decode("latin-1")
        return is_our_origin(origin.decode("latin-1"), host=host, public_origin=self.public_origin)

    async def _refuse(self, send, status: int, error: str, message: str) -> None:
        body = _error_body(error, message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _LimitedReceive:
    """An ASGI ``receive`` that raises ``_BodyTooLarge`` once the body passes ``max_body_bytes``,
    and remembers it did (``exceeded``)."""

    def __init__(self, receive, max_body_bytes: int) -> None:
        self._receive = receive
        self._max_body_bytes = max_body_bytes
        self._seen = 0
        self.exceeded = False

    async def __call__(self):
        message = await self._receive()
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._max_body_bytes:
                self.exceeded = True
                raise _BodyTooLarge()
        return message


class _BodyTooLarge(Exception):
    pass
