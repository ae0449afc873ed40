"""JSON API: Remembered browsers, sessions and password change (issue 3)."""

from __future__ import annotations

from fastapi import APIRouter

from twofold.web.api import ERRORS

router = APIRouter(prefix="/api/v1", responses=ERRORS)
