"""A readable label for a browser, such as "Chrome on Windows", from its User-Agent.

Only for people reading their session list: it decides nothing, so a small
ordered table of tokens is enough (no dependency, no version numbers). The order
matters because browsers claim each other's names: Edge and Opera say "Chrome",
Chrome says "Safari", and every browser says "Mozilla".
"""

from __future__ import annotations

BROWSERS: tuple[tuple[str, str], ...] = (
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("Edge/", "Edge"),
    ("OPR/", "Opera"),
    ("Opera", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),  # Safari alone carries Version/ with Safari/
    ("Trident/", "Internet Explorer"),
    ("MSIE ", "Internet Explorer"),
    ("curl/", "curl"),
    ("python-httpx/", "Python client"),
    ("python-requests/", "Python client"),
    ("python-urllib", "Python client"),
    ("testclient", "Test client"),
    ("twofold-cli", "Twofold command line"),
)

SYSTEMS: tuple[tuple[str, str], ...] = (
    ("Windows", "Windows"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)

UNKNOWN = "Unknown browser"


def _first(user_agent: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for token, name in table:
        if token in user_agent:
            return name
    return None


def browser_label(user_agent: str | None) -> str:
    """ "Chrome on Windows", "Safari on iPhone", "Firefox", or "Unknown browser"."""
    if not user_agent:
        return UNKNOWN
    user_agent = user_agent[:512]
    browser = _first(user_agent, BROWSERS)
    if browser == "Safari" and "Safari" not in user_agent:
        browser = None
    system = _first(user_agent, SYSTEMS)
    if browser and system:
        return f"{browser} on {system}"
    if browser:
        return browser
    if system:
        return f"A browser on {system}"
    return UNKNOWN
