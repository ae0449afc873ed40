"""Independent clients: what Twofold hands out must work in tools that are not ours.

The QR code is rendered by librsvg (``rsvg-convert``) and read back by ZBar
(``zbarimg``), the way a phone camera would; the codes come from OATH Toolkit's
``oathtool``, the way an authenticator app would compute them. Only the test
clock is shared: oathtool is told the frozen time with ``--now``.
"""

from __future__ import annotations

import re
import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.conftest import PASSWORD, require_tool, sign_in
from tests.crypto.test_otp import RFC6238, SEEDS
from twofold.crypto import otp

pytestmark = pytest.mark.interop


def run(*args: str) -> str:
    completed = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0, f"{args[0]} failed ({completed.returncode}): {completed.stderr.strip()}"
    return completed.stdout


def oathtool_totp(
    secret: str, at: datetime | int, *, base32: bool = True, algorithm: str = "SHA1", digits: int = 6
) -> str:
    """The code oathtool computes for ``secret`` at ``at`` (a datetime, or Unix seconds)."""
    moment = f"@{at}" if isinstance(at, int) else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    args = [require_tool("oathtool"), f"--totp={algorithm}", "-d", str(digits), "--now", moment]
    if base32:
        args.append("-b")
    return run(*args, secret).strip()


def scan_qr(svg: str, directory: Path) -> str:
    """Render the SVG to a PNG with librsvg and decode it with ZBar, as a camera would see it."""
    svg_path, png_path = directory / "qr.svg", directory / "qr.png"
    svg_path.write_text(svg)
    run(require_tool("rsvg-convert"), "--format=png", "--zoom=2", "--output", str(png_path), str(svg_path))
    return run(require_tool("zbarimg"), "--raw", "-q", str(png_path)).rstrip("\n")


def test_qr_code_scans_to_the_uri_and_oathtool_codes_sign_in(client, make_user, clock, tmp_path):
    require_tool("oathtool")
    member = make_user()
    assert sign_in(client, member).json() == {"status": "signed_in"}

    enrollment = client.post("/api/v1/me/totp").json()
    scanned = scan_qr(enrollment["qr_svg"], tmp_path)
    assert scanned == enrollment["otpauth_uri"]

    uri = urlsplit(scanned)
    params = {name: values[0] for name, values in parse_qs(uri.query).items()}
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == f"/Riverside Family Practice:{member.email}"
    assert params == {
        "secret": enrollment["secret"],
        "issuer": "Riverside Family Practice",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }
    secret = params["secret"]
    assert len(otp.from_b32(secret)) * 8 == 160

    confirm = client.post(
        "/api/v1/me/totp/confirm",
        json={"enrollment_id": enrollment["enrollment_id"], "code": oathtool_totp(secret, clock.now())},
    )
    assert confirm.status_code == 200, confirm.text
    assert client.get("/api/v1/me").json()["two_factor"]["methods"] == ["totp", "recovery_code"]

    assert client.post("/api/v1/sign-out").status_code == 200
    started = client.post("/api/v1/sign-in", json={"email": member.email, "password": PASSWORD}).json()
    assert started["status"] == "second_factor_required"
    clock.advance(seconds=otp.PERIOD)  # the confirming code is spent; the app shows the next one
    finished = client.post(
        f"/api/v1/sign-in/{started['flow_id']}/second-factor",
        json={"method": "totp", "code": oathtool_totp(secret, clock.now())},
    )
    assert finished.status_code == 200, finished.text
    assert finished.json() == {"status": "signed_in"}
    assert client.get("/api/v1/me").json()["email"] == member.email


@pytest.mark.parametrize(("unix_time", "sha1", "sha256", "sha512"), RFC6238)
def test_oathtool_agrees_with_rfc6238_vectors_and_ours(unix_time, sha1, sha256, sha512):
    for algorithm, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        theirs = oathtool_totp(SEEDS[algorithm].hex(), unix_time, base32=False, algorithm=algorithm.upper(), digits=8)
        ours = otp.totp(SEEDS[algorithm], unix_time, digits=8, algorithm=algorithm)
        assert theirs == ours == expected, algorithm


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 9, 0, 29, tzinfo=UTC),  # last second of a step
        datetime(2026, 11, 2, 9, 0, 30, tzinfo=UTC),  # first second of the next
        datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),  # past 32-bit time_t
    ],
)
def test_oathtool_reads_our_base32_secret_and_computes_our_code(moment):
    key = otp.new_secret()
    assert oathtool_totp(otp.b32_secret(key), moment) == otp.totp(key, moment.timestamp())


def test_report_charts_parse_and_render_in_librsvg(client, admin, make_user, tmp_path):
    """The compliance report's charts are SVG that librsvg reads and draws at their stated size."""
    make_user(role="staff", with_totp=True)
    make_user(role="provider")
    page = client.get("/admin/report")
    assert page.status_code == 200
    charts = re.findall(r"<svg\b.*?</svg>", page.text, flags=re.S)
    assert len(charts) == 2
    for index, svg in enumerate(charts):
        width, height = (int(n) for n in re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).groups())
        svg_path, png_path = tmp_path / f"chart{index}.svg", tmp_path / f"chart{index}.png"
        svg_path.write_text(svg)
        run(require_tool("rsvg-convert"), "--format=png", "--output", str(png_path), str(svg_path))
        png = png_path.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
        assert struct.unpack(">II", png[16:24]) == (width, height)
