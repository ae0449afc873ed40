"""Security keys and passkeys (WebAuthn): verifying an assertion, and the challenges it answers.

A challenge (``WebAuthnChallenge``) is random, bound to its purpose, its member and,
at sign-in, its flow, and to the relying party and origin it was issued for; it
lives at most 5 minutes and is deleted as it is used, so an assertion is accepted
once. A response is matched to its challenge by a keyed hash of the challenge the
browser signed. The credential must be one of the member's: another account's key,
or a key of another site, is refused like a wrong code.

A signature counter that does not go up (WebAuthn §6.1.1) after a good signature
means two authenticators hold one key: the sign-in is refused, the event audited
as a possible clone and the member emailed. Setting keys up, the member's list,
and signing in with a passkey alone are in ``enrollment.py`` beside this module.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Protocol, cast
from urllib.parse import urlsplit

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.crypto import webauthn
from twofold.crypto.secret_box import TokenHasher
from twofold.factors.base import FactorResponse, Outcome, Verification
from twofold.store.models import SignInFlow, User, WebAuthnChallenge, WebAuthnCredential

CHALLENGE_TTL = timedelta(minutes=5)
# How long the browser lets the member take over the prompt (inside the challenge's life).
PROMPT_TIMEOUT_MS = 180_000

# Purposes of a challenge.
REGISTER = "register"
SIGN_IN = "sign_in"
REAUTH = "reauth"
PASSKEY = "passkey"


class CloneNotices(Protocol):
    def notify_possible_cloned_key(self, user: User, context: RequestContext, *, key_name: str) -> None:
        """Tell the account's owner a key answered with a signature counter that went back."""


@dataclass(frozen=True, slots=True)
class RelyingParties:
    """Which relying party a ceremony is for: the public origin's host when one is configured, else the
    host the request was served at (development: ``localhost`` or ``127.0.0.1`` and the port)."""

    public_origin: str | None

    def for_origin(self, served_origin: str) -> webauthn.RelyingParty:
        origin = (self.public_origin or served_origin).rstrip("/")
        # The host without the port (an IPv6 literal keeps its brackets; browsers refuse it as an RP id anyway).
        rp_id = urlsplit(origin).hostname or ""
        return webauthn.RelyingParty(id=rp_id.lower(), origin=origin)


@dataclass(kw_only=True, slots=True)
class WebAuthnFactor:
    kind: ClassVar[str] = "webauthn"
    label: ClassVar[str] = "Security key or passkey"
    # RFC 8176 "hwk": proof of possession of a hardware-secured key. A synced passkey is a software-secured
    # key ("swk"); each accepted response names its own in ``details["amr"]``, which the sign-in records.
    amr: ClassVar[str] = "hwk"
    described_as: ClassVar[str] = "a security key or passkey"
    always_allowed: ClassVar[bool] = False
    phishing_resistant: ClassVar[bool] = True  # the browser signs our origin into every response (WebAuthn §13.4.9)
    for_recovery: ClassVar[bool] = False
    code_format: ClassVar[str] = "your security key or passkey (the browser asks for it)"
    wrong_code_message: ClassVar[str] = (
        "Your security key or passkey was not accepted. Try again, or use another sign-in method."
    )

    clock: Clock
    hasher: TokenHasher  # keyed hashes of challenges
    audit: AuditLog
    notices: CloneNotices

    # -- the SecondFactor protocol ----------------------------------------

    def normalize(self, response: FactorResponse) -> str | None:
        """The credential id an assertion names, or None when ``response`` is not an assertion."""
        try:
            return webauthn.b64url(webauthn.assertion_claims(response).credential_id)
        except webauthn.MalformedCredential:
            return None

    def is_enabled_for(self, session: Session, user: User) -> bool:
        found = session.execute(select(WebAuthnCredential.id).where(WebAuthnCredential.user_id == user.id).limit(1))
        return found.first() is not None

    def begin_challenge(self, session: Session, *, user: User, flow: SignInFlow) -> None:
        # The challenge is the browser's request options, made where the served origin is known
        # (``WebAuthnService.sign_in_options``); nothing is sent.
        return None

    def verify(
        self, session: Session, *, user: User, response: FactorResponse, flow: SignInFlow | None = None
    ) -> Verification:
        """Check an assertion against a live challenge of ``user`` (of ``flow`` at sign-in, else one for
        re-authentication) and one of ``user``'s keys; on acceptance the challenge is used up."""
        try:
            claims = webauthn.assertion_claims(response)
        except webauthn.MalformedCredential:
            return Verification(Outcome.MALFORMED)
        query = select(WebAuthnChallenge).where(
            WebAuthnChallenge.challenge_hash == self.challenge_hash(claims.challenge),
            WebAuthnChallenge.user_id == user.id,
        )
        if flow is None:
            query = query.where(WebAuthnChallenge.purpose == REAUTH)
        else:
            query = query.where(WebAuthnChallenge.purpose == SIGN_IN, WebAuthnChallenge.flow_id == flow.id)
        challenge = session.execute(query.with_for_update()).scalar_one_or_none()
        if challenge is None:
            # Never issued for this, or used already (a used challenge is deleted): a replay lands here.
            return Verification(Outcome.REUSED, {"reason": "unknown_or_used_challenge"})
        credential = session.execute(
            select(WebAuthnCredential).where(
                WebAuthnCredential.credential_id == webauthn.b64url(claims.credential_id),
                WebAuthnCredential.user_id == user.id,
            )
        ).scalar_one_or_none()
        if credential is None:
            return Verification(Outcome.WRONG, {"reason": "unknown_credential"})
        return self.check(session, user=user, challenge=challenge, credential=credential, response=response)

    def remove(self, session: Session, *, user: User) -> None:
        session.execute(delete(WebAuthnCredential).where(WebAuthnCredential.user_id == user.id))
        session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.user_id == user.id))

    def enabled_user_ids(self):
        return select(WebAuthnCredential.user_id).distinct()

    # -- challenges and assertions (also used by enrollment.py) -----------

    def challenge_hash(self, challenge: bytes) -> str:
        return self.hasher.hash(webauthn.b64url(challenge))

    def issue_challenge(
        self,
        session: Session,
        *,
        purpose: str,
        rp: webauthn.RelyingParty,
        user_verification: str,
        user_id: int | None = None,
        flow_id: str | None = None,
    ) -> tuple[str, bytes]:
        """A new challenge row (its id and the random challenge); expired ones are swept away first."""
        now = self.clock.now()
        session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= now))
        challenge = webauthn.new_challenge()
        challenge_id = secrets.token_urlsafe(24)
        session.add(
            WebAuthnChallenge(
                id=challenge_id,
                challenge_hash=self.challenge_hash(challenge),
                purpose=purpose,
                user_id=user_id,
                flow_id=flow_id,
                rp_id=rp.id,
                origin=rp.origin,
                user_verification=user_verification,
                created_at=now,
                expires_at=now + CHALLENGE_TTL,
            )
        )
        session.flush()
        return challenge_id, challenge

    def check(
        self,
        session: Session,
        *,
        user: User,
        challenge: WebAuthnChallenge,
        credential: WebAuthnCredential,
        response: FactorResponse,
    ) -> Verification:
        """The assertion ``response`` checked against ``challenge`` (locked) and ``credential``; on acceptance
        the challenge is deleted and the credential's counter and last use recorded."""
        now = self.clock.now()
        if now >= challenge.expires_at:
            return Verification(Outcome.EXPIRED, {"reason": "challenge_expired"})
        rp = webauthn.RelyingParty(id=challenge.rp_id, origin=challenge.origin)
        try:
            if isinstance(response, str):
                raise webauthn.MalformedCredential("a code, not an assertion")
            claims = webauthn.assertion_claims(response)
            verified = webauthn.verify_assertion(
                response,
                rp=rp,
                challenge=claims.challenge,
                public_key=credential.public_key,
                require_user_verification=challenge.user_verification == "required",
            )
        except webauthn.MalformedCredential:
            return Verification(Outcome.MALFORMED)
        except webauthn.CredentialRefused as exc:
            return Verification(Outcome.WRONG, {"reason": "assertion_refused", "why": exc.reason[:200]})
        if webauthn.counter_went_back(credential.sign_count, verified.sign_count):
            self.audit.record(
                session,
                EventTag.WEBAUTHN_POSSIBLE_CLONE,
                context=RequestContext(),
                practice_id=user.practice_id,
                subject_id=user.id,
                details={
                    "credential": credential.id,
                    "stored_count": credential.sign_count,
                    "received_count": verified.sign_count,
                },
            )
            notices, name = self.notices, credential.name
            return Verification(
                Outcome.WRONG,
                {"reason": "counter_regression", "credential": credential.id},
                after_commit=lambda context: notices.notify_possible_cloned_key(user, context, key_name=name),
            )
        used = cast(
            CursorResult, session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.id == challenge.id))
        ).rowcount
        if used != 1:
            return Verification(Outcome.REUSED, {"race": True})
        session.execute(
            update(WebAuthnCredential)
            .where(WebAuthnCredential.id == credential.id)
            .values(sign_count=verified.sign_count, last_used_at=now, backed_up=verified.backed_up)
            .execution_options(synchronize_session=False)
        )
        amr = "hwk" if credential.device_bound is not False else "swk"
        return Verification(
            Outcome.ACCEPTED, {"credential": credential.id, "amr": amr, "user_verified": verified.user_verified}
        )
