from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twofold.core.useragent import MAX_LABEL, browser_label

CASES = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
     "Chrome 130 on Windows"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 "
     "Edg/130.0.2849.56", "Edge 130 on Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 "
     "Safari/605.1.15", "Safari 17 on macOS"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Mobile/15E148 Safari/604.1", "Safari 17 on iPhone"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/130.0.6723.90 "
     "Mobile/15E148 Safari/604.1", "Chrome 130 on iPhone"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox 128 on Linux"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile "
     "Safari/537.36", "Chrome 130 on Android"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
     "Chrome 130 on ChromeOS"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 "
     "OPR/115.0.0.0", "Opera 115 on Windows"),
    ("curl/8.5.0", "curl 8"),
    ("twofold-cli", "Twofold command line"),
    ("SomethingElse/1.0 (Windows NT 10.0)", "Unknown browser on Windows"),
    ("", "Unknown browser"),
    (None, "Unknown browser"),
]


@pytest.mark.parametrize(("user_agent", "label"), CASES)
def test_a_user_agent_gets_a_label_people_recognise(user_agent, label):
    assert browser_label(user_agent) == label


@given(st.text(max_size=2000))
def test_any_header_gets_a_short_label_without_raising(user_agent):
    label = browser_label(user_agent)
    assert 0 < len(label) <= MAX_LABEL
