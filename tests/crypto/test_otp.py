"""RFC 4226 Appendix D and RFC 6238 Appendix B vectors, and code normalisation."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twofold.crypto import otp

RFC4226_KEY = b"12345678901234567890"
RFC4226_CODES = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]

# RFC 6238 Appendix B: seeds are the ASCII strings of 20, 32 and 64 bytes.
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226_CODES)))
def test_hotp_matches_rfc4226_appendix_d(counter, expected):
    assert otp.hotp(RFC4226_KEY, counter) == expected


@pytest.mark.parametrize(("unix_time", "sha1", "sha256", "sha512"), RFC6238)
def test_totp_matches_rfc6238_appendix_b(unix_time, sha1, sha256, sha512):
    assert otp.totp(SEEDS["sha1"], unix_time, digits=8, algorithm="sha1") == sha1
    assert otp.totp(SEEDS["sha256"], unix_time, digits=8, algorithm="sha256") == sha256
    assert otp.totp(SEEDS["sha512"], unix_time, digits=8, algorithm="sha512") == sha512


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (-1, True), (1, True), (-2, False), (2, False), (-10, False), (10, False)],
)
def test_window_is_current_step_plus_minus_one(offset, accepted):
    key = otp.new_secret()
    step = 55_000_000
    match = otp.match_step(key, otp.hotp(key, step + offset), step)
    assert match is not None and match.step == step + offset
    assert match.in_window is accepted


def test_codes_beyond_ten_steps_are_not_recognised():
    key = otp.new_secret()
    step = 55_000_000
    code = otp.hotp(key, step + 11)
    # Unless the same code happens to appear at a nearer step (1 in 10^6 per step), no match.
    nearer = {otp.hotp(key, step + d) for d in range(-10, 11)}
    assert (otp.match_step(key, code, step) is None) is (code not in nearer)


@pytest.mark.parametrize(
    "raw", ["12345", "1234567", "12a456", "１２３４５６", "", "      ", "12345\n6", "-12345", "+123456"]
)
def test_malformed_codes_are_refused(raw):
    assert otp.normalize_code(raw) is None


@pytest.mark.parametrize(("raw", "clean"), [("123456", "123456"), ("123 456", "123456"), (" 123456 ", "123456")])
def test_spaces_people_type_are_removed(raw, clean):
    assert otp.normalize_code(raw) == clean


@given(st.text(max_size=12))
def test_normalized_codes_are_always_six_ascii_digits(raw):
    result = otp.normalize_code(raw)
    assert result is None or (len(result) == 6 and result.isascii() and result.isdigit())


def test_otpauth_uri_is_standard():
    key = bytes(range(20))
    uri = otp.otpauth_uri(key=key, account="dr.lee@clinic.example", issuer="Riverside Family Practice")
    assert uri.startswith("otpauth://totp/Riverside%20Family%20Practice:dr.lee@clinic.example?")
    assert f"secret={otp.b32_secret(key)}" in uri
    for part in ("issuer=Riverside%20Family%20Practice", "algorithm=SHA1", "digits=6", "period=30"):
        assert part in uri


def test_secret_is_160_bits_and_grouped_in_fours():
    key = otp.new_secret()
    assert len(key) == 20
    secret = otp.b32_secret(key)
    assert len(secret) == 32 and "=" not in secret
    assert otp.grouped(secret) == " ".join(secret[i : i + 4] for i in range(0, 32, 4))


@pytest.mark.parametrize(("name", "shown"), [("Smith: Family Care", "Smith Family Care"), (" : ", "Twofold")])
def test_a_colon_in_the_issuer_cannot_split_the_label(name, shown):
    uri = otp.otpauth_uri(key=bytes(20), account="dr.lee@clinic.example", issuer=name)
    label = uri.split("otpauth://totp/", 1)[1].split("?", 1)[0]
    assert label.count(":") == 1
    assert label == otp.quote(f"{shown}:dr.lee@clinic.example", safe="@:")
    assert f"issuer={otp.quote(shown)}" in uri
