"""A readable label for a User-Agent header ("Chrome 130 on Windows"), for security emails.

Deliberately small: the label helps a person recognise their own browser; it is
not used for any security decision, and a forged header only forges the label.
Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
"""

from __future__ import annotations

import re

MAX_LABEL = 80

# (pattern, name): the first that matches names the browser; group 1 is its version.
_BROWSERS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\bEdg(?:e|A|iOS)?/(\d+)", "Edge"),
        (r"\bOPR/(\d+)", "Opera"),
        (r"\bSamsungBrowser/(\d+)", "Samsung Internet"),
        (r"\bFirefox/(\d+)", "Firefox"),
        (r"\bFxiOS/(\d+)", "Firefox"),
        (r"\bCriOS/(\d+)", "Chrome"),
        (r"\bChromium/(\d+)", "Chromium"),
        (r"\bHeadlessChrome/(\d+)", "Headless Chrome"),
        (r"\bChrome/(\d+)", "Chrome"),
        (r"\bVersion/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/", "Safari"),
        (r"\bcurl/(\d+)", "curl"),
        (r"\bpython-httpx/(\d+)", "python-httpx"),
        (r"\bpython-requests/(\d+)", "python-requests"),
        (r"^twofold-(\w+)", "Twofold"),
    )
)

_SYSTEMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\biPhone\b", "iPhone"),
        (r"\biPad\b", "iPad"),
        (r"\bAndroid\b", "Android"),
        (r"\bCrOS\b", "ChromeOS"),
        (r"\bWindows\b", "Windows"),
        (r"\bMac OS X\b|\bMacintosh\b", "macOS"),
        (r"\bLinux\b", "Linux"),
    )
)


def browser_label(user_agent: str | None) -> str:
    """"Firefox 128 on Linux", "Safari on iPhone", "Unknown browser"; never longer than 80 characters."""
    if not user_agent or not user_agent.strip():
        return "Unknown browser"
    text = user_agent[:512]
    browser = None
    for pattern, name in _BROWSERS:
        match = pattern.search(text)
        if match:
            if name == "Twofold":
                return {"cli": "Twofold command line"}.get(match.group(1), f"Twofold ({match.group(1)})")[:MAX_LABEL]
            version = match.group(1)
            # Safari's major version is the useful part; others too, but never more.
            browser = f"{name} {version}" if version and version.isdigit() and len(version) <= 4 else name
            break
    system = next((name for pattern, name in _SYSTEMS if pattern.search(text)), None)
    if browser is None:
        return f"Unknown browser on {system}" if system else "Unknown browser"
    return (f"{browser} on {system}" if system else browser)[:MAX_LABEL]
