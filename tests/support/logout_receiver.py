"""An app's back-channel logout endpoint for the tests: a Starlette app on real HTTP that keeps
every logout token posted to it and answers with the status the test chose."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class LogoutReceiver:
    status: int = 200
    tokens: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def app(self) -> Starlette:
        async def logout(request: Request) -> Response:
            form = await request.form()
            with self._changed:
                self.tokens.append(str(form.get("logout_token", "")))
                self.content_types.append(request.headers.get("content-type", ""))
                self._changed.notify_all()
            return Response(status_code=self.status, headers={"Cache-Control": "no-store"})

        return Starlette(routes=[Route("/logout", logout, methods=["POST"])])

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[str]:
        """Block until ``count`` tokens have arrived (delivery runs in Twofold's background thread)."""
        deadline = time.monotonic() + timeout  # waiting for a real request, not moving the clock
        with self._changed:
            while len(self.tokens) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} logout token(s), got {len(self.tokens)}")
                self._changed.wait(remaining)
            return list(self.tokens)
