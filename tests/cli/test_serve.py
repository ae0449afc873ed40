"""``twofold serve`` hands uvicorn import strings (the CLI does not import the web package):
they must name what the web package really serves."""

from __future__ import annotations

from uvicorn.importer import import_from_string

from twofold.cli import serve
from twofold.web import app, server


def test_serve_names_the_web_apps_factory_and_http_protocol():
    assert import_from_string(serve.APP_FACTORY) is app.create_app_from_env
    assert import_from_string(serve.HTTP_PROTOCOL) is server.TcpNoDelayHTTPProtocol
    assert serve.HTTP_PROTOCOL == server.HTTP_PROTOCOL
