"""Pydantic schemas every part of the JSON API shares: the error body, a bare status, the
re-authentication body, and the error answers every route documents.

Each domain's own schemas sit beside its routes (``account/schemas.py``, ``factors/schemas.py``,
``practice/schemas.py``); sign-in's are in ``signin.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form
from pydantic import BaseModel, ConfigDict, Field

from twofold.errors import InvalidInput


class Strict(BaseModel):
    """A request body: unknown fields and loose types are refused (422)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ReauthRequest(Strict):
    password: str = Field(min_length=1, max_length=1024)
    code: str = Field(min_length=1, max_length=64)


class StatusPublic(BaseModel):
    status: str


class ErrorPublic(BaseModel):
    error: str
    message: str
    enrolment_url: str | None = Field(
        default=None, description="With `admin_two_factor_required`: where to turn on two-factor authentication"
    )


class ReadinessPublic(BaseModel):
    status: str
    checks: dict[str, str] = Field(description='Each dependency: "ok", or the error code of what is wrong')


# The shape FastAPI's ``responses=`` parameter expects (status code -> OpenAPI fields).
Responses = dict[int | str, dict[str, Any]]

ERRORS: Responses = {
    400: {"model": ErrorPublic, "description": "Invalid code or request"},
    401: {"model": ErrorPublic, "description": "Not signed in, or wrong credentials"},
    403: {
        "model": ErrorPublic,
        "description": "Refused (another origin, or not allowed; `admin_two_factor_required` with `enrolment_url`)",
    },
    422: {"model": ErrorPublic, "description": "Malformed input"},
    429: {"model": ErrorPublic, "description": "Throttled; see retry_after and Retry-After"},
    503: {
        "model": ErrorPublic,
        "description": "The database or Redis does not answer; nothing changed, see Retry-After",
    },
}


# Form fields of the pages' re-authentication forms (password and a code), sized like the JSON bodies.
CodeField = Annotated[str, Form(max_length=64)]
PasswordField = Annotated[str, Form(max_length=1024)]


def require_password_and_code(password: str, code: str) -> None:
    """A re-authentication form needs both fields before anything is checked (no guess is counted)."""
    if not password or not code.strip():
        raise InvalidInput("Enter your password and a code.")
