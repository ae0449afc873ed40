"""JSON API: Backup codes, email codes and security emails (issue 4)."""

from __future__ import annotations

from fastapi import APIRouter

from twofold.web.api import ERRORS

router = APIRouter(prefix="/api/v1", responses=ERRORS)
