"""Security keys and passkeys as the member uses them: adding, naming, listing and removing keys, the
browser's options for the sign-in step, and signing in with a passkey alone.

Adding a key is a WebAuthn registration (§7.1): options with a fresh challenge
(``registration_id`` names it), then the browser's credential, verified against
them. Adding the first key turns 2FA on and gives backup codes, as the app does.
Removing a key needs re-authentication (password and a code, or this very key).

A passkey sign-in (§7.2 with a discoverable credential) asks the browser for any
passkey of this site with user verification required: the key (something you
have) unlocked by a PIN or a fingerprint (something you know or are) is both
factors (NIST SP 800-63B-4 §3.1.7, multi-factor cryptographic authenticator). The
practice may turn it off (``passkey_sign_in``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from twofold.audit import AuditLog, EventTag
from twofold.clock import Clock
from twofold.context import RequestContext
from twofold.core.policy import Policy
from twofold.core.reauth import Reauthentication
from twofold.core.security_mail import SecurityMail
from twofold.core.sessions import SessionService
from twofold.core.signin import SignInService
from twofold.crypto import webauthn
from twofold.crypto.secret_box import TokenHasher
from twofold.errors import (
    Conflict,
    FlowExpired,
    FlowNotFound,
    Forbidden,
    InvalidCredentials,
    InvalidInput,
    MethodNotAvailable,
    NotFound,
    Throttled,
)
from twofold.factors.base import AuditFacts, BackupCodeIssuer, FactorRegistry, FactorResponse, PendingSetups
from twofold.factors.webauthn.factor import (
    PASSKEY,
    PROMPT_TIMEOUT_MS,
    REAUTH,
    REGISTER,
    SIGN_IN,
    RelyingParties,
    WebAuthnFactor,
)
from twofold.store.db import Database, Refusal, lock_account
from twofold.store.models import User, WebAuthnChallenge, WebAuthnCredential
from twofold.throttle import Throttle, code_throttle_key

MAX_KEYS = 20
MAX_NAME = 64


class WebAuthnNotAllowed(Forbidden):
    code = "webauthn_not_allowed"
    message = "Your practice does not allow security keys or passkeys."


class PasskeySignInNotAllowed(Forbidden):
    code = "passkey_sign_in_not_allowed"
    message = (
        "Your practice does not allow signing in with a passkey alone. Sign in with your email and password, "
        "then use your security key."
    )


class RegistrationNotFound(NotFound):
    code = "registration_not_found"
    message = "This key set-up was not found or has expired (5 minutes). Start adding the key again."


class RegistrationRefused(InvalidInput):
    code = "registration_refused"
    message = "The key's answer could not be checked. Start adding the key again, on this site's own address."


class KeyAlreadyAdded(Conflict):
    code = "webauthn_already_added"
    message = "This security key or passkey is already added to an account."


class TooManyKeys(Conflict):
    code = "webauthn_too_many"
    message = f"You have {MAX_KEYS} security keys or passkeys, the most an account may have. Remove one first."


class KeyNotFound(NotFound):
    code = "webauthn_not_found"
    message = "No such security key or passkey on your account."


class LastKey(Conflict):
    code = "last_method"
    message = (
        "This is your only sign-in method besides backup codes. Add another key or an authenticator app first, "
        "or turn two-factor authentication off."
    )


class PasskeyFlowNotFound(FlowNotFound):
    code = "passkey_flow_not_found"
    message = "This passkey sign-in was not found or has expired. Try again."


class PasskeyRefused(InvalidCredentials):
    code = "passkey_refused"
    message = "That passkey could not sign you in. Try again, or sign in with your email and password."


class MalformedCredential(InvalidInput):
    code = "malformed_credential"
    message = "That is not a WebAuthn credential: send what PublicKeyCredential.toJSON() gives."


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as the member's list shows it."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    backed_up: bool
    device_bound: bool | None  # None: the authenticator did not say
    discoverable: bool | None


@dataclass(frozen=True, slots=True)
class Registration:
    registration_id: str
    options: dict


@dataclass(frozen=True, slots=True)
class KeyAdded:
    """``recovery_codes`` is non-empty when adding the key turned 2FA on (shown once)."""

    id: int
    recovery_codes: list[str]


@dataclass(frozen=True, slots=True)
class PasskeyOptions:
    passkey_flow_id: str
    options: dict


@dataclass(frozen=True, slots=True)
class PasskeySignedIn:
    user_id: int
    session_token: str


def clean_name(name: object) -> str:
    """A key's name: 1 to 64 printable characters, trimmed; ``InvalidInput`` otherwise."""
    if not isinstance(name, str):
        raise InvalidInput("name: give the key a name of 1 to 64 characters.")
    cleaned = unicodedata.normalize("NFC", " ".join(name.split()))
    if not cleaned or len(cleaned) > MAX_NAME or not cleaned.isprintable():
        raise InvalidInput("name: give the key a name of 1 to 64 characters.")
    return cleaned


def _view(row: WebAuthnCredential) -> KeyView:
    return KeyView(
        row.id, row.name, row.created_at, row.last_used_at, row.backed_up, row.device_bound, row.discoverable
    )


@dataclass(kw_only=True, slots=True)
class WebAuthnService:
    kind: ClassVar[str] = WebAuthnFactor.kind

    db: Database
    clock: Clock
    audit: AuditLog
    throttle: Throttle
    factor: WebAuthnFactor
    factors: FactorRegistry
    reauth: Reauthentication
    backup_codes: BackupCodeIssuer
    backup_kind: str  # the backup codes' kind: not a method of its own when counting what is left
    pending_elsewhere: list[PendingSetups]
    mail: SecurityMail
    sessions: SessionService
    sign_in: SignInService
    relying_parties: RelyingParties
    handles: TokenHasher  # derives a member's first user handle

    # -- the member's keys --------------------------------------------------------------

    def keys_of(self, user: User) -> list[KeyView]:
        with self.db.reading() as s:
            rows = s.execute(
                select(WebAuthnCredential)
                .where(WebAuthnCredential.user_id == user.id)
                .order_by(WebAuthnCredential.created_at, WebAuthnCredential.id)
            ).scalars()
            return [_view(row) for row in rows]

    def allowed_for(self, user: User) -> bool:
        with self.db.reading() as s:
            return self._allowed(s.get_one(User, user.id))

    def start_registration(self, *, user: User, served_origin: str) -> Registration:
        """Options for ``navigator.credentials.create()``; the member's keys are excluded (no key twice)."""
        rp = self.relying_parties.for_origin(served_origin)
        with self.db.transaction() as s:
            user = s.get_one(User, user.id)
            if not self._allowed(user):
                raise WebAuthnNotAllowed()
            keys = self._keys(s, user)
            if len(keys) >= MAX_KEYS:
                raise TooManyKeys()
            registration_id, challenge = self.factor.issue_challenge(
                s, purpose=REGISTER, rp=rp, user_verification="preferred", user_id=user.id
            )
            options = webauthn.registration_options(
                rp=rp,
                challenge=challenge,
                user_handle=self._user_handle(user, keys),
                user_name=user.email,
                display_name=user.name,
                exclude=[(webauthn.from_b64url(key.credential_id), key.transports or []) for key in keys],
                timeout_ms=PROMPT_TIMEOUT_MS,
            )
        return Registration(registration_id, options)

    def finish_registration(
        self, *, user: User, registration_id: str, credential: Mapping[str, object], name: str, context: RequestContext
    ) -> KeyAdded:
        """Verify the new credential and add it; the first key turns 2FA on (with backup codes)."""
        name = clean_name(name)
        if not isinstance(credential, Mapping):
            raise MalformedCredential()
        try:
            signed_challenge = webauthn.registration_challenge(credential)
        except webauthn.MalformedCredential:
            raise MalformedCredential() from None
        with self.db.transaction() as s:
            user = s.get_one(User, user.id)
            facts: AuditFacts = {
                "context": context,
                "practice_id": user.practice_id,
                "actor_id": user.id,
                "subject_id": user.id,
            }
            pending = self._challenge(s, registration_id, purpose=REGISTER, user_id=user.id)
            if pending is None or self.clock.now() >= pending.expires_at:
                raise RegistrationNotFound()
            if not self._allowed(user):
                raise WebAuthnNotAllowed()
            if pending.challenge_hash != self.factor.challenge_hash(signed_challenge):
                self.audit.record(s, EventTag.WEBAUTHN_ADD_FAILED, **facts, details={"reason": "other_challenge"})
                raise Refusal(RegistrationRefused())
            rp = webauthn.RelyingParty(id=pending.rp_id, origin=pending.origin)
            try:
                added = webauthn.verify_registration(
                    credential, rp=rp, challenge=signed_challenge, require_user_verification=False
                )
            except webauthn.MalformedCredential:
                raise MalformedCredential() from None
            except webauthn.CredentialRefused as exc:
                self.audit.record(s, EventTag.WEBAUTHN_ADD_FAILED, **facts, details={"reason": exc.reason[:200]})
                raise Refusal(RegistrationRefused()) from None
            keys = self._keys(s, user)
            if len(keys) >= MAX_KEYS:
                raise TooManyKeys()
            credential_id = webauthn.b64url(added.credential_id)
            if s.execute(
                select(WebAuthnCredential.id).where(WebAuthnCredential.credential_id == credential_id)
            ).first():
                raise KeyAlreadyAdded()
            turned_on = not self.factors.enabled_for(s, user)
            row = WebAuthnCredential(
                user_id=user.id,
                credential_id=credential_id,
                user_handle=webauthn.b64url(self._user_handle(user, keys)),
                public_key=added.public_key,
                sign_count=added.sign_count,
                name=name,
                device_bound=added.device_bound,
                backed_up=added.backed_up,
                discoverable=added.discoverable,
                transports=added.transports,
                aaguid=added.aaguid,
                created_at=self.clock.now(),
            )
            s.add(row)
            s.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.id == pending.id))
            try:
                s.flush()
            except IntegrityError:
                raise KeyAlreadyAdded() from None
            self.audit.record(
                s,
                EventTag.WEBAUTHN_ADDED,
                **facts,
                details={"credential": row.id, "device_bound": added.device_bound, "aaguid": added.aaguid},
            )
            codes: list[str] = []
            if turned_on:
                for setups in self.pending_elsewhere:
                    setups.discard_pending(s, user=user)
                self.audit.record(s, EventTag.TWO_FACTOR_ENABLED, **facts, details={"method": self.kind})
                codes = self.backup_codes.issue_first_set(s, user=user, context=context)
            key_id = row.id
        if turned_on:
            self.mail.notify_two_factor_enabled(user, context, method_label=self.factor.described_as)
        else:
            self.mail.notify_webauthn_added(user, context, key_name=name)
        return KeyAdded(key_id, codes)

    def rename(self, *, user: User, key_id: int, name: str, context: RequestContext) -> KeyView:
        name = clean_name(name)
        with self.db.transaction() as s:
            row = self._key(s, user, key_id)
            if row.name != name:
                old = row.name
                row.name = name
                self.audit.record(
                    s,
                    EventTag.WEBAUTHN_RENAMED,
                    context=context,
                    practice_id=user.practice_id,
                    actor_id=user.id,
                    subject_id=user.id,
                    details={"credential": row.id, "from": old, "to": name},
                )
            return _view(row)

    def reauth_options(self, *, user: User, served_origin: str) -> dict:
        """Request options to confirm a security change with one of the member's keys (as the ``code``)."""
        rp = self.relying_parties.for_origin(served_origin)
        with self.db.transaction() as s:
            user = s.get_one(User, user.id)
            keys = self._keys(s, user)
            if not keys or not self._allowed(user):
                raise MethodNotAvailable("You have no security key or passkey to confirm with: use a code.")
            _, challenge = self.factor.issue_challenge(
                s, purpose=REAUTH, rp=rp, user_verification="preferred", user_id=user.id
            )
            return self._request_options(rp, challenge, keys, "preferred")

    def remove(self, *, user: User, key_id: int, password: str, code: FactorResponse, context: RequestContext) -> None:
        """Remove one key after re-authentication; refused when it is the last method besides backup codes."""
        with self.reauth.password(user=user, password=password) as password_check, self.db.transaction() as s:
            user = s.get_one(User, user.id)
            row = self._key(s, user, key_id)
            others = [kind for kind in self.factors.enabled_for(s, user) if kind not in (self.kind, self.backup_kind)]
            if len(self._keys(s, user)) == 1 and not others:
                raise LastKey()
            proof = self.reauth.verify(
                s, user=user, password=password_check, code=code, context=context, action="remove_webauthn"
            )
            name = row.name
            s.delete(row)
            self.audit.record(
                s,
                EventTag.WEBAUTHN_REMOVED,
                context=context,
                practice_id=user.practice_id,
                actor_id=user.id,
                subject_id=user.id,
                details={"credential": key_id, "proof": proof.method},
            )
        proof.after_commit(context)
        self.mail.notify_webauthn_removed(user, context, key_name=name)

    # -- sign-in ----------------------------------------------------------------------

    def sign_in_options(self, *, flow_id: str, served_origin: str, context: RequestContext | None = None) -> dict:
        """Request options for the sign-in flow's second step: the member's keys, user verification preferred.

        ``context`` carries the browser's flow binding: only the browser that passed the password step gets them."""
        flow, user_record, methods = self.sign_in.flow_methods(flow_id, context=context)
        if self.kind not in methods:
            raise MethodNotAvailable()
        rp = self.relying_parties.for_origin(served_origin)
        with self.db.transaction() as s:
            user = s.get_one(User, user_record.id)
            keys = self._keys(s, user)
            _, challenge = self.factor.issue_challenge(
                s, purpose=SIGN_IN, rp=rp, user_verification="preferred", user_id=user.id, flow_id=flow.id
            )
            return self._request_options(rp, challenge, keys, "preferred")

    def passkey_options(self, *, served_origin: str) -> PasskeyOptions:
        """Options for a passkey sign-in: any discoverable credential of this site, user verification required."""
        rp = self.relying_parties.for_origin(served_origin)
        with self.db.transaction() as s:
            flow_id, challenge = self.factor.issue_challenge(s, purpose=PASSKEY, rp=rp, user_verification="required")
            return PasskeyOptions(flow_id, self._request_options(rp, challenge, [], "required"))

    def passkey_sign_in(
        self, *, passkey_flow_id: str, credential: Mapping[str, object], context: RequestContext
    ) -> PasskeySignedIn:
        """Sign in with a passkey alone. Every refusal but a malformed credential or a dead flow gets one answer."""
        if not isinstance(credential, Mapping):
            raise MalformedCredential()
        try:
            claims = webauthn.assertion_claims(credential)
        except webauthn.MalformedCredential:
            raise MalformedCredential() from None
        follow_up = None
        try:
            with self.db.transaction() as s:
                pending = self._challenge(s, passkey_flow_id, purpose=PASSKEY, user_id=None)
                if pending is None:
                    raise PasskeyFlowNotFound()
                if self.clock.now() >= pending.expires_at:
                    raise FlowExpired("This passkey sign-in has expired. Try again.")
                row = s.execute(
                    select(WebAuthnCredential).where(
                        WebAuthnCredential.credential_id == webauthn.b64url(claims.credential_id)
                    )
                ).scalar_one_or_none()
                user = s.get(User, row.user_id) if row is not None else None
                reason = None
                if row is None or user is None:
                    reason = "unknown_credential"
                elif pending.challenge_hash != self.factor.challenge_hash(claims.challenge):
                    reason = "other_challenge"
                elif claims.user_handle is None or webauthn.b64url(claims.user_handle) != row.user_handle:
                    reason = "user_handle_mismatch"
                elif not user.active:
                    reason = "inactive"
                if reason is not None or row is None or user is None:
                    self.audit.record(
                        s,
                        EventTag.PASSKEY_SIGN_IN_FAILED,
                        context=context,
                        practice_id=user.practice_id if user else None,
                        subject_id=user.id if user else None,
                        details={"reason": reason},
                    )
                    raise Refusal(PasskeyRefused())
                policy = Policy.of(user.practice)
                if not self.factors.allows(policy.allowed_methods, self.kind) or not policy.passkey_sign_in:
                    raise PasskeySignInNotAllowed()
                lock_account(s, user.id)
                key = code_throttle_key(user.id)
                wait = self.throttle.retry_after(s, [key])
                if wait:
                    self.audit.record(
                        s,
                        EventTag.SIGN_IN_THROTTLED,
                        context=context,
                        practice_id=user.practice_id,
                        subject_id=user.id,
                        details={"step": "passkey", "method": self.kind, "retry_after": wait},
                    )
                    raise Refusal(Throttled(wait, "sign-in attempts"))
                verification = self.factor.check(s, user=user, challenge=pending, credential=row, response=credential)
                if not verification.accepted:
                    follow_up = verification.after_commit
                    wait = self.throttle.hit(s, [key])
                    self.audit.record(
                        s,
                        EventTag.PASSKEY_SIGN_IN_FAILED,
                        context=context,
                        practice_id=user.practice_id,
                        subject_id=user.id,
                        details={"reason": str(verification.outcome), **(verification.details or {})},
                    )
                    self.audit.record_lockout(
                        s, wait=wait, step="passkey", context=context, practice_id=user.practice_id, subject_id=user.id
                    )
                    raise Refusal(PasskeyRefused())
                details = verification.details or {}
                amr = (details.get("amr") or self.factor.amr, "user", "mfa")
                token = self.sessions.start(s, user=user, context=context, amr=amr)
                user.last_sign_in_at = self.clock.now()
                self.audit.record(
                    s,
                    EventTag.SIGN_IN_SUCCEEDED,
                    context=context,
                    practice_id=user.practice_id,
                    actor_id=user.id,
                    subject_id=user.id,
                    details={**details, "method": self.kind, "passkey": True},
                )
                return PasskeySignedIn(user.id, token)
        except (PasskeyRefused, Throttled):
            if follow_up is not None:
                follow_up(context)
            raise

    # -- helpers ----------------------------------------------------------------------

    def _allowed(self, user: User) -> bool:
        return self.factors.allows(Policy.of(user.practice).allowed_methods, self.kind)

    def _keys(self, s: Session, user: User) -> list[WebAuthnCredential]:
        return list(
            s.execute(
                select(WebAuthnCredential).where(WebAuthnCredential.user_id == user.id).order_by(WebAuthnCredential.id)
            ).scalars()
        )

    def _key(self, s: Session, user: User, key_id: int) -> WebAuthnCredential:
        row = s.execute(
            select(WebAuthnCredential).where(WebAuthnCredential.id == key_id, WebAuthnCredential.user_id == user.id)
        ).scalar_one_or_none()
        if row is None:
            raise KeyNotFound()
        return row

    def _challenge(self, s: Session, challenge_id: str, *, purpose: str, user_id: int | None):
        if not isinstance(challenge_id, str) or not 0 < len(challenge_id) <= 64 or not challenge_id.isascii():
            return None
        query = select(WebAuthnChallenge).where(
            WebAuthnChallenge.id == challenge_id, WebAuthnChallenge.purpose == purpose
        )
        query = query.where(
            WebAuthnChallenge.user_id.is_(None) if user_id is None else WebAuthnChallenge.user_id == user_id
        )
        return s.execute(query.with_for_update()).scalar_one_or_none()

    def _user_handle(self, user: User, keys: list[WebAuthnCredential]) -> bytes:
        """The member's user handle: that of their keys, or (first key) one derived from a keyed hash of their id,
        so it says nothing about the account (§14.6.1) and stays the same until the first key is saved."""
        if keys:
            return webauthn.from_b64url(keys[0].user_handle)
        return bytes.fromhex(self.handles.hash(f"user:{user.id}"))

    @staticmethod
    def _request_options(
        rp: webauthn.RelyingParty, challenge: bytes, keys: list[WebAuthnCredential], user_verification: str
    ) -> dict:
        return webauthn.authentication_options(
            rp=rp,
            challenge=challenge,
            allow=[(webauthn.from_b64url(key.credential_id), key.transports or []) for key in keys],
            user_verification=user_verification,
            timeout_ms=PROMPT_TIMEOUT_MS,
        )
