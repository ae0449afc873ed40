"""JSON API: Practice administration (issue 5)."""

from __future__ import annotations

from fastapi import APIRouter

from twofold.web.api import ERRORS

router = APIRouter(prefix="/api/v1", responses=ERRORS)
