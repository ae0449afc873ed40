"""Who the client is behind a reverse proxy, believed only from the proxies the operator trusts.

Behind a TLS proxy every connection comes from the proxy, so the per-client sign-in throttle
would count every member as one client. ``TrustedProxies`` (a pure ASGI middleware, outermost)
takes the client's address from ``X-Forwarded-For`` (or RFC 7239 ``Forwarded``) and the scheme
from ``X-Forwarded-Proto``, but only when the connection comes from an address in
``TWOFOLD_TRUSTED_PROXIES``. The address list is walked from the right, past trusted hops:
the first untrusted address is the client (anything to its left was written by the client and
proves nothing). From an untrusted peer the headers are ignored.

It also notes in the request's state whether the peer was trusted (``proxy_trusted``), which
is what the forward-auth routes need before believing the ``X-Forwarded-*`` headers that
describe the original request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

PROXY_TRUSTED = "proxy_trusted"


def parse_address(text: str) -> Address | None:
    """An address from a forwarding header: bare, ``[v6]``, ``[v6]:port``, ``v4:port`` or quoted; None if malformed."""
    text = text.strip().strip('"')
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: Address | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def _forwarded_for(values: Iterable[str]) -> list[str]:
    """The ``for=`` of each element of RFC 7239 ``Forwarded`` headers, in order."""
    found = []
    for value in values:
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, data = pair.strip().partition("=")
                if name.strip().lower() == "for":
                    found.append(data)
    return found


def client_address(peer: str, hops: Sequence[str], networks: Sequence[Network]) -> str:
    """The client's address: ``peer`` unless it is trusted, else the rightmost untrusted hop of ``hops``.

    A malformed hop ends the walk at the trusted proxy that reported it: nothing further left
    can be believed.
    """
    current = parse_address(peer)
    if not is_trusted(current, networks):
        return peer
    client = peer
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            break
        client = str(address)
        if not is_trusted(address, networks):
            break
    return client


class TrustedProxies:
    def __init__(self, app, *, networks: Sequence[Network]) -> None:
        self.app = app
        self.networks = tuple(networks)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer = client[0] if client else ""
        trusted = is_trusted(parse_address(peer), self.networks) if peer else False
        scope.setdefault("state", {})[PROXY_TRUSTED] = trusted
        if trusted:
            forwarded_for: list[str] = []
            forwarded: list[str] = []
            proto = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded_for.extend(part for part in value.decode("latin-1").split(",") if part.strip())
                elif name == b"forwarded":
                    forwarded.append(value.decode("latin-1"))
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1")
            hops = forwarded_for or _forwarded_for(forwarded)
            if hops:
                scope["client"] = (client_address(peer, hops, self.networks), client[1] if client else 0)
            if proto is not None:
                # The proxy nearest to us wrote the last value.
                scheme = proto.split(",")[-1].strip().lower()
                if scheme in ("http", "https"):
                    scope["scheme"] = scheme
        await self.app(scope, receive, send)
