"""OpenID Connect Back-Channel Logout 1.0: when a Twofold session ends, the apps signed in from it
hear so directly, server to server, and end their own sessions.

An app opts in with a ``backchannel_logout_uri``. Whenever a session ends (signing out, signing out
everywhere, an admin's reset or deactivation, a password change, the idle or absolute limit), each
such app holding tokens from that session is owed a logout (an ``OidcLogoutNotice`` row, written in
the ending transaction, so a change that rolls back owes nothing). Once the transaction commits,
a background thread posts a signed logout token to each app; whatever failed is tried again by the
server's scheduler on a widening schedule, and after the last try the failure is audited so the
practice's admins can see that an app may still have the member signed in.

A logout token (§2.4) is an RS256 JWT with ``typ: logout+jwt``: ``iss``, ``aud`` (the client id),
``iat``, ``exp`` (two minutes), ``jti``, ``sub``, ``sid`` (the ``sid`` of the app's ID tokens) and the
back-channel logout event; never a ``nonce``. The request follows no redirect and its answer's body
is ignored, so the address cannot be used to read anything from Twofold's network.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import CursorResult, event, or_, select, update
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.oidc.keys import ALGORITHM, SigningKeys
from twofold.core.retention import PurgeRule
from twofold.crypto.secret_box import random_token
from twofold.store.db import Database
from twofold.store.models import App, OidcClient, OidcLogoutNotice, OidcSubject, OidcToken

log = logging.getLogger("twofold.oidc.backchannel")

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_LIFETIME = timedelta(minutes=2)
# After the first try fails: the waits before each next one. After the last, the logout is given up.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
# A claimed notice is left alone by other processes this long (its try has a 5 s timeout).
LEASE = timedelta(minutes=1)
SEND_TIMEOUT = 5.0
BATCH = 50
_PENDING = "twofold.backchannel.pending"

# What the purge deletes (core/retention.py): logouts delivered or given up longer ago than the
# keeping period (30 days by default). One still being tried is never purged.
PURGE_RULES = [
    PurgeRule(
        "settled back-channel logouts",
        OidcLogoutNotice.id,
        lambda now, kept: or_(OidcLogoutNotice.delivered_at < kept, OidcLogoutNotice.given_up_at < kept),
    ),
]


def post_logout_token(http: httpx.Client, uri: str, token: str) -> str | None:
    """POST the token as the spec says (form-encoded ``logout_token``); None when the app answered
    200 or 204, else what went wrong, briefly (a status, or the kind of connection failure)."""
    try:
        answer = http.post(uri, data={"logout_token": token}, headers={"Cache-Control": "no-store"})
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    return None if answer.status_code in (200, 204) else f"HTTP {answer.status_code}"


@dataclass(frozen=True, slots=True)
class _Claimed:
    notice_id: int
    attempts: int
    uri: str
    client_id: str
    practice_id: int
    app_id: int
    app_name: str
    subject: str
    sid: str


@dataclass(kw_only=True)
class BackchannelLogout:
    """Owes, signs and sends back-channel logouts (a ``SessionEndListener`` of the session service)."""

    db: Database
    clock: Clock
    audit: AuditLog
    keys: SigningKeys
    issuer: Callable[[], str]  # the public origin, as the app's ID tokens say
    sid_of: Callable[[int], str]
    # Off in tests that drive delivery themselves: the background try after each commit.
    send_after_commit: bool = True
    _wake: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _busy: bool = field(default=False, repr=False)
    # One client for every try: a new one per request would load the CA bundle each time (~50 ms).
    _http: httpx.Client | None = field(default=None, repr=False)

    # -- owing ---------------------------------------------------------------------------------

    def sessions_ended(self, session: Session, session_ids: Sequence[int], *, reason: str) -> None:
        """In the ending transaction: a notice for each app with a logout URI holding tokens from these sessions."""
        rows = session.execute(
            select(OidcToken.client_pk, OidcToken.session_id, OidcSubject.subject)
            .join(OidcClient, OidcClient.id == OidcToken.client_pk)
            .join(OidcSubject, OidcSubject.user_id == OidcToken.user_id)
            .where(OidcToken.session_id.in_(session_ids), OidcClient.backchannel_logout_uri.is_not(None))
            .distinct()
        ).all()
        if not rows:
            return
        now = self.clock.now()
        for client_pk, session_id, subject in rows:
            if session_id is None:  # not reached: the query asked for these sessions
                continue
            session.add(
                OidcLogoutNotice(
                    client_pk=client_pk,
                    subject=subject,
                    sid=self.sid_of(session_id),
                    reason=reason[:64],
                    created_at=now,
                    next_try_at=now,
                    attempts=0,
                )
            )
        if self.send_after_commit and not session.info.get(_PENDING):
            session.info[_PENDING] = True
            event.listen(session, "after_commit", self._after_commit, once=True)
            event.listen(session, "after_rollback", lambda s: s.info.pop(_PENDING, None), once=True)

    def _after_commit(self, session: Session) -> None:
        session.info.pop(_PENDING, None)
        self._start_sender()
        self._wake.set()

    def _start_sender(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="twofold-backchannel", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._idle:
                self._busy = True
                self._wake.clear()
            try:
                self.deliver_due()
            except Exception:  # the scheduler tries again; never let the thread die with a request's data
                log.exception("back-channel logout delivery failed; the scheduler will try again")
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the background thread has tried every logout owed so far; False on timeout.
        The server calls it on shutdown, so a logout owed just before is not left to the next start."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy or self._wake.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    # -- sending -------------------------------------------------------------------------------

    def deliver_due(self) -> int:
        """Try every notice that is due (claimed first, so two processes never send one twice); return
        how many apps confirmed. Run after each commit that owed some, and by the server's scheduler."""
        confirmed = 0
        while True:
            claimed, signer = self._claim()
            for notice in claimed:
                token = self._token(signer, client_id=notice.client_id, subject=notice.subject, sid=notice.sid)
                confirmed += self._settle(notice, post_logout_token(self._client(), notice.uri, token))
            if len(claimed) < BATCH:
                return confirmed

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=SEND_TIMEOUT, follow_redirects=False)
            return self._http

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _claim(self) -> tuple[list[_Claimed], tuple[str, RSAKey] | None]:
        now = self.clock.now()
        claimed: list[_Claimed] = []
        with self.db.transaction() as s:
            due = s.execute(
                select(OidcLogoutNotice, OidcClient, App)
                .join(OidcClient, OidcClient.id == OidcLogoutNotice.client_pk)
                .join(App, App.id == OidcClient.app_id)
                .where(OidcLogoutNotice.next_try_at <= now)
                .order_by(OidcLogoutNotice.id)
                .limit(BATCH)
            ).all()
            for notice, client, app in due:
                uri = client.backchannel_logout_uri
                # Claimed for one try; or, if the app's address was removed since, settled: nothing to tell it.
                values: dict[str, Any] = (
                    {"next_try_at": now + LEASE}
                    if uri
                    else {"next_try_at": None, "given_up_at": now, "last_status": "no back-channel logout URI any more"}
                )
                taken = s.execute(
                    update(OidcLogoutNotice)
                    .where(OidcLogoutNotice.id == notice.id, OidcLogoutNotice.next_try_at == notice.next_try_at)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if cast(CursorResult[Any], taken).rowcount != 1 or not uri:
                    continue
                claimed.append(
                    _Claimed(
                        notice.id,
                        notice.attempts,
                        uri,
                        client.client_id,
                        app.practice_id,
                        app.id,
                        app.name,
                        notice.subject,
                        notice.sid,
                    )
                )
            signer = self.keys.signer(s) if claimed else None
        return claimed, signer

    def _token(self, signer: tuple[str, RSAKey] | None, *, client_id: str, subject: str, sid: str) -> str:
        """A signed logout token for one app (§2.4), with the key ``_claim`` read."""
        if signer is None:
            raise RuntimeError("no signing key was read for these logouts")
        kid, key = signer
        now = self.clock.now()
        claims = {
            "iss": self.issuer(),
            "aud": client_id,
            "iat": int(now.timestamp()),
            "exp": int((now + TOKEN_LIFETIME).timestamp()),
            "jti": random_token(16),
            "sub": subject,
            "sid": sid,
            "events": {LOGOUT_EVENT: {}},
        }
        return jwt.encode({"alg": ALGORITHM, "kid": kid, "typ": "logout+jwt"}, claims, key)

    def _settle(self, notice: _Claimed, problem: str | None) -> int:
        now = self.clock.now()
        attempts = notice.attempts + 1
        with self.db.transaction() as s:
            row = s.get(OidcLogoutNotice, notice.notice_id)
            if row is None:  # the app was removed meanwhile
                return 0
            row.attempts = attempts
            row.last_status = "delivered" if problem is None else problem[:200]
            if problem is None:
                row.delivered_at, row.next_try_at = now, None
                return 1
            if attempts <= len(RETRY_DELAYS):
                row.next_try_at = now + RETRY_DELAYS[attempts - 1]
                log.warning(
                    "back-channel logout to app %d (%s) failed: %s; next try at %s",
                    notice.app_id,
                    notice.app_name,
                    problem,
                    row.next_try_at.isoformat(timespec="seconds"),
                )
                return 0
            row.given_up_at, row.next_try_at = now, None
            log.error(
                "back-channel logout to app %d (%s) given up after %d tries", notice.app_id, notice.app_name, attempts
            )
            self.audit.record(
                s,
                EventTag.OIDC_LOGOUT_UNDELIVERED,
                context=RequestContext(),
                practice_id=notice.practice_id,
                details={"app_id": notice.app_id, "name": notice.app_name, "tries": attempts, "last": problem[:200]},
            )
            return 0

    def pending(self) -> list[OidcLogoutNotice]:
        """Notices not yet delivered nor given up, oldest first (for tests and operators)."""
        with self.db.reading() as s:
            return list(
                s.scalars(
                    select(OidcLogoutNotice)
                    .where(OidcLogoutNotice.delivered_at.is_(None), OidcLogoutNotice.given_up_at.is_(None))
                    .order_by(OidcLogoutNotice.id)
                )
            )
