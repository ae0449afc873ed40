"""The py_webauthn wrapper: our errors only, whatever the browser sends, and the relying party of an origin."""

from __future__ import annotations

import json
import random

import pytest

from tests.support import authenticator
from twofold.crypto import webauthn
from twofold.factors.webauthn.factor import RelyingParties

RP = webauthn.RelyingParty(id="127.0.0.1", origin="http://127.0.0.1")
CHALLENGE = b"c" * 32
OPTIONS = {
    "challenge": authenticator.b64url(CHALLENGE),
    "rp": {"id": RP.id},
    "rpId": RP.id,
    "user": {"id": authenticator.b64url(b"u" * 32)},
}


@pytest.mark.parametrize(
    ("public_origin", "served", "rp_id", "origin"),
    [
        (None, "http://localhost:8000", "localhost", "http://localhost:8000"),
        (None, "http://127.0.0.1", "127.0.0.1", "http://127.0.0.1"),
        ("https://Signin.Example.org/", "http://10.0.0.5:8000", "signin.example.org", "https://Signin.Example.org"),
        ("https://signin.example.org:8443", "http://x", "signin.example.org", "https://signin.example.org:8443"),
    ],
)
def test_the_relying_party_is_the_public_origins_host_or_the_served_one(public_origin, served, rp_id, origin):
    assert RelyingParties(public_origin).for_origin(served) == webauthn.RelyingParty(id=rp_id, origin=origin)


def _mutated(value: dict, rnd: random.Random) -> dict:
    """``value`` with one field dropped, emptied, retyped or with one bit flipped."""
    value = json.loads(json.dumps(value))
    paths: list[list[str]] = []

    def walk(node, path):
        if isinstance(node, dict):
            for name, child in node.items():
                paths.append([*path, name])
                walk(child, [*path, name])

    walk(value, [])
    path = rnd.choice(paths)
    parent = value
    for name in path[:-1]:
        parent = parent[name]
    old = parent[path[-1]]
    change = rnd.randrange(5)
    if change == 0:
        del parent[path[-1]]
    elif change == 1:
        parent[path[-1]] = rnd.choice([None, 12, [], {}, "%%%", ""])
    elif change == 2:
        parent[path[-1]] = authenticator.b64url(rnd.randbytes(rnd.randrange(64)))
    elif isinstance(old, str) and old and all(c.isalnum() or c in "-_" for c in old):
        raw = bytearray(authenticator.unb64url(old))
        if raw:
            raw[rnd.randrange(len(raw))] ^= 1 << rnd.randrange(8)
        parent[path[-1]] = authenticator.b64url(bytes(raw))
    return value


def test_any_mangled_registration_or_assertion_raises_only_our_errors():
    key = authenticator.SoftwareKey()
    registration = authenticator.register(OPTIONS, key, origin=RP.origin)
    assertion = authenticator.sign_in_with(OPTIONS, key, origin=RP.origin)
    rnd = random.Random(13)  # noqa: S311 - a seeded, repeatable choice of mutations, not a secret
    refused = 0
    for _ in range(400):
        try:
            webauthn.verify_registration(
                _mutated(registration, rnd), rp=RP, challenge=CHALLENGE, require_user_verification=False
            )
        except (webauthn.MalformedCredential, webauthn.CredentialRefused):
            refused += 1
        mangled = _mutated(assertion, rnd)
        try:
            claims = webauthn.assertion_claims(mangled)
            webauthn.verify_assertion(
                mangled,
                rp=RP,
                challenge=claims.challenge,
                public_key=key.cose_public_key(),
                require_user_verification=False,
            )
        except (webauthn.MalformedCredential, webauthn.CredentialRefused):
            refused += 1
    assert refused > 400  # most mutations break something; none raised anything else


def test_the_unmangled_ones_verify_and_the_counter_rule_holds():
    key = authenticator.SoftwareKey(algorithm="RS256")
    added = webauthn.verify_registration(
        authenticator.register(OPTIONS, key, origin=RP.origin),
        rp=RP,
        challenge=CHALLENGE,
        require_user_verification=True,
    )
    assert added.credential_id == key.credential_id and added.device_bound and added.discoverable is True
    verified = webauthn.verify_assertion(
        authenticator.sign_in_with(OPTIONS, key, origin=RP.origin),
        rp=RP,
        challenge=CHALLENGE,
        public_key=added.public_key,
        require_user_verification=True,
    )
    assert verified.sign_count == 1 and verified.user_verified
    assert [webauthn.counter_went_back(s, r) for s, r in [(0, 0), (0, 1), (5, 6), (5, 5), (5, 4)]] == [
        False,
        False,
        False,
        True,
        True,
    ]
