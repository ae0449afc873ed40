"""``GET /api/v1/me``: who is signed in, their practice, and their two-factor status."""

from __future__ import annotations

from fastapi import APIRouter

from twofold.web.account.schemas import MePublic, PracticePublic, TwoFactorPublic
from twofold.web.deps import ServicesDep, SignedIn
from twofold.web.schemas import ERRORS

api = APIRouter(prefix="/api/v1", responses=ERRORS)


@api.get("/me", response_model=MePublic, summary="The signed-in user")
def me(active: SignedIn, services: ServicesDep):
    user = active.user
    status = services.accounts.two_factor_status(user)
    return MePublic(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        practice=PracticePublic(id=user.practice.id, name=user.practice.name),
        two_factor=TwoFactorPublic(
            enabled=status.enabled, methods=status.methods, recovery_codes_left=status.recovery_codes_left
        ),
        session_expires_at=active.expires_at.isoformat(),
    )
