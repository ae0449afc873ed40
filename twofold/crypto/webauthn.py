"""WebAuthn (W3C Web Authentication Level 3) ceremonies, as a thin wrapper of py_webauthn.

Nothing above this module imports the library: its options come out as the JSON
form browsers take (``PublicKeyCredential.parseCreationOptionsFromJSON`` and
``parseRequestOptionsFromJSON``), its results as our dataclasses, and every
exception it raises as ``MalformedCredential`` (not a credential at all) or
``CredentialRefused`` (a credential, but not one to accept; ``reason`` says why,
for the audit log, never for the client).

What is checked (WebAuthn §7.1 registration, §7.2 authentication): the ceremony
type, the challenge, the origin exactly, the RP id hash, user presence, user
verification where required, and the signature. Attestation is ``none`` (we ask
for no attestation, and keep no vendor trust store). The signature counter
(§6.1.1) is compared by ``counter_went_back``, after the signature is known to be
good, so that a cloned key can be told apart from a forged response.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import options_to_json_dict, parse_authentication_credential_json, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

CHALLENGE_BYTES = 32  # §13.4.3: at least 16 random bytes
MAX_CREDENTIAL_ID_BYTES = 1023  # §5.8.3 (a Credential ID is at most 1023 bytes)
_TRANSPORTS = {transport.value: transport for transport in AuthenticatorTransport}


class MalformedCredential(ValueError):
    """The value is not the JSON form of a WebAuthn credential (or not of the expected ceremony)."""


class CredentialRefused(Exception):
    """A well-formed credential that must not be accepted; ``reason`` is for the audit log only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who we are to the authenticator: the RP id (a host name) and the one origin a response may come from."""

    id: str
    origin: str
    name: str = "Twofold"


@dataclass(frozen=True, slots=True)
class RegisteredCredential:
    """A new credential, verified: what to store."""

    credential_id: bytes
    public_key: bytes  # COSE_Key
    sign_count: int
    device_bound: bool  # §6.1.3: backup eligibility off, the key cannot leave the authenticator
    backed_up: bool
    user_verified: bool
    discoverable: bool | None  # credProps.rk, when the browser says
    transports: list[str]
    aaguid: str


@dataclass(frozen=True, slots=True)
class AssertionClaims:
    """What an assertion says before it is verified: which credential, which challenge, which user handle."""

    credential_id: bytes
    challenge: bytes
    user_handle: bytes | None


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    sign_count: int
    backed_up: bool
    user_verified: bool


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_BYTES)


def new_user_handle() -> bytes:
    """§14.6.1: a random user handle of 64 bytes, so that it says nothing about the account."""
    return secrets.token_bytes(64)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """Base64url without padding, strictly; ``MalformedCredential`` otherwise."""
    if not isinstance(text, str) or not text.isascii() or "=" in text:
        raise MalformedCredential("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise MalformedCredential("not base64url") from exc


def _descriptors(credentials: Sequence[tuple[bytes, Sequence[str]]]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=credential_id, transports=[_TRANSPORTS[t] for t in transports if t in _TRANSPORTS] or None
        )
        for credential_id, transports in credentials
    ]


def registration_options(
    *,
    rp: RelyingParty,
    challenge: bytes,
    user_handle: bytes,
    user_name: str,
    display_name: str,
    exclude: Sequence[tuple[bytes, Sequence[str]]],
    timeout_ms: int,
) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptions in their JSON form.

    A discoverable credential is preferred (so the key works as a passkey where it
    can), user verification preferred, attestation none, ES256 or RS256 (or EdDSA).
    """
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_name=user_name,
        user_id=user_handle,
        user_display_name=display_name,
        challenge=challenge,
        timeout=timeout_ms,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(exclude),
    )
    body = options_to_json_dict(options)
    body["extensions"] = {"credProps": True}
    return body


def authentication_options(
    *,
    rp: RelyingParty,
    challenge: bytes,
    allow: Sequence[tuple[bytes, Sequence[str]]],
    user_verification: str,
    timeout_ms: int,
) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptions in their JSON form; an empty ``allow`` asks for a discoverable one."""
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=timeout_ms,
        allow_credentials=_descriptors(allow),
        user_verification=UserVerificationRequirement(user_verification),
    )
    return options_to_json_dict(options)


def _client_data(credential: Mapping[str, object]) -> dict[str, Any]:
    response = credential.get("response")
    if not isinstance(response, Mapping):
        raise MalformedCredential("no response")
    raw = response.get("clientDataJSON")
    if not isinstance(raw, str) or not raw:
        raise MalformedCredential("no clientDataJSON")
    try:
        data = json.loads(from_b64url(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedCredential("clientDataJSON is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("challenge"), str):
        raise MalformedCredential("clientDataJSON has no challenge")
    return data


def registration_challenge(credential: object) -> bytes:
    """The challenge a registration response answers (unverified: to find the pending registration)."""
    if not isinstance(credential, Mapping):
        raise MalformedCredential("not an object")
    return from_b64url(_client_data(credential)["challenge"])


def assertion_claims(credential: object) -> AssertionClaims:
    """The credential id, challenge and user handle an assertion names, unverified (to look them up).

    ``MalformedCredential`` unless it is the JSON form of a ``navigator.credentials.get()`` result.
    """
    if not isinstance(credential, Mapping):
        raise MalformedCredential("not an object")
    try:
        parsed = parse_authentication_credential_json(dict(credential))
        client_data = parse_client_data_json(parsed.response.client_data_json)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise MalformedCredential("not an assertion") from exc
    if (
        not parsed.raw_id
        or len(parsed.raw_id) > MAX_CREDENTIAL_ID_BYTES
        or b64url(parsed.raw_id) != parsed.id
        or not parsed.response.authenticator_data
        or not parsed.response.signature
        or not client_data.challenge
    ):
        raise MalformedCredential("not an assertion")
    return AssertionClaims(parsed.raw_id, client_data.challenge, parsed.response.user_handle or None)


def verify_registration(
    credential: Mapping[str, object], *, rp: RelyingParty, challenge: bytes, require_user_verification: bool
) -> RegisteredCredential:
    """Verify a ``navigator.credentials.create()`` result (§7.1); ``CredentialRefused`` or ``MalformedCredential``."""
    try:
        verified = verify_registration_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=require_user_verification,
        )
    except WebAuthnException as exc:
        raise CredentialRefused(f"registration: {exc}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedCredential("not a registration") from exc
    if len(verified.credential_id) > MAX_CREDENTIAL_ID_BYTES:
        raise CredentialRefused("credential id too long")
    response = credential.get("response")
    transports = response.get("transports") if isinstance(response, Mapping) else None
    extensions = credential.get("clientExtensionResults")
    props = extensions.get("credProps") if isinstance(extensions, Mapping) else None
    resident = props.get("rk") if isinstance(props, Mapping) else None
    return RegisteredCredential(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        device_bound=verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE,
        backed_up=verified.credential_backed_up,
        user_verified=verified.user_verified,
        discoverable=resident if isinstance(resident, bool) else None,
        transports=[t for t in transports if t in _TRANSPORTS][:8] if isinstance(transports, list) else [],
        aaguid=verified.aaguid,
    )


def verify_assertion(
    credential: Mapping[str, object],
    *,
    rp: RelyingParty,
    challenge: bytes,
    public_key: bytes,
    require_user_verification: bool,
) -> VerifiedAssertion:
    """Verify a ``navigator.credentials.get()`` result (§7.2) but its signature counter (``counter_went_back``)."""
    try:
        verified = verify_authentication_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=public_key,
            credential_current_sign_count=0,  # compared by the caller, after the signature is known good
            require_user_verification=require_user_verification,
        )
    except WebAuthnException as exc:
        raise CredentialRefused(str(exc)) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedCredential("not an assertion") from exc
    return VerifiedAssertion(verified.new_sign_count, verified.credential_backed_up, verified.user_verified)


def counter_went_back(stored: int, received: int) -> bool:
    """§6.1.1: a counter that does not increase (when either is non-zero) signals a possibly cloned authenticator."""
    return (stored > 0 or received > 0) and received <= stored
