"""Browsers an account knows (OWASP's "device cookie"), and the emailed unlock link.

A lockout that anyone can trigger by typing wrong passwords for a known email is a
weapon. So wrong passwords are counted per account *and* client, and the
account-wide ceiling (every unknown client together) does not apply to a browser
that signed in to that account before: it carries a device cookie, and its guesses
count only against its own key (OWASP Authentication Cheat Sheet, "Device cookies").
An attacker hammering from elsewhere locks out only unknown browsers; the member's
own browser still gets in.

The cookie is stateless: an id and an expiry, signed with a keyed hash bound to the
account's email. Its name is a keyed hash of the email too (``twofold_kb_`` + 16 hex
digits), so a shared front-desk browser keeps one per member, and the name says
nothing about who signed in there. A cookie copied from one account is worthless for
another.

When the ceiling locks an account, the member is emailed an unlock link (one per
hour at most). Opening it in a browser makes that browser known and clears the
account's failure counts; the link is signed the same way and lives one hour.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from twofold.clock import Clock
from twofold.core.remembered import BrowserCookie
from twofold.crypto.secret_box import TokenHasher, random_token

COOKIE_PREFIX = "twofold_kb_"
KNOWN_FOR = timedelta(days=365)
UNLOCK_LINK_TTL = timedelta(hours=1)
_VALUE = re.compile(r"(?P<expires>[0-9]{1,12})\.(?P<id>[A-Za-z0-9_-]{16,64})\.(?P<mac>[0-9a-f]{32})")
_UNLOCK = re.compile(r"(?P<user>[0-9]{1,19})\.(?P<expires>[0-9]{1,12})\.(?P<mac>[0-9a-f]{32})")


@dataclass(frozen=True, slots=True)
class UnlockToken:
    """What a valid unlock link names: the account, and when the link stops working."""

    user_id: int
    expires: int


@dataclass(kw_only=True, slots=True)
class KnownBrowsers:
    """Issues and recognises device cookies and unlock links; no storage, no transaction."""

    clock: Clock
    hasher: TokenHasher

    def cookie_name(self, email: str) -> str:
        return COOKIE_PREFIX + self.hasher.hash(f"name:{email}")[:16]

    def issue(self, email: str) -> BrowserCookie:
        """A new device cookie for ``email``'s account, to set on the browser that just signed in."""
        expires = int((self.clock.now() + KNOWN_FOR).timestamp())
        browser_id = random_token(16)
        mac = self._mac(f"browser:{email}:{expires}:{browser_id}")
        return BrowserCookie(self.cookie_name(email), f"{expires}.{browser_id}.{mac}", int(KNOWN_FOR.total_seconds()))

    def recognise(self, email: str, cookies: Mapping[str, str] | None) -> str | None:
        """The browser's id when ``cookies`` hold a live device cookie of ``email``'s account; else None."""
        value = (cookies or {}).get(self.cookie_name(email))
        match = _VALUE.fullmatch(value or "")
        if match is None:
            return None
        expires, browser_id = match["expires"], match["id"]
        if not hmac.compare_digest(match["mac"], self._mac(f"browser:{email}:{expires}:{browser_id}")):
            return None
        if int(expires) <= self.clock.now().timestamp():
            return None
        return browser_id

    def unlock_token(self, *, user_id: int, email: str) -> str:
        expires = int((self.clock.now() + UNLOCK_LINK_TTL).timestamp())
        return f"{user_id}.{expires}.{self._mac(f'unlock:{user_id}:{email}:{expires}')}"

    def read_unlock_token(self, token: str) -> UnlockToken | None:
        """The account and expiry a well-formed unlock token claims (not yet checked: see ``unlock_is_valid``)."""
        match = _UNLOCK.fullmatch(token or "")
        if match is None or int(match["user"]) > 2**63 - 1:
            return None
        return UnlockToken(int(match["user"]), int(match["expires"]))

    def unlock_is_valid(self, token: str, *, email: str) -> bool:
        claimed = self.read_unlock_token(token)
        if claimed is None or claimed.expires <= self.clock.now().timestamp():
            return False
        expected = self._mac(f"unlock:{claimed.user_id}:{email}:{claimed.expires}")
        return hmac.compare_digest(token.rsplit(".", 1)[1], expected)

    def _mac(self, text: str) -> str:
        return self.hasher.hash(text)[:32]
