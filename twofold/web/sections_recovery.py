"""What the Security page's backup-code, email-code and undelivered-mail sections need (issue 4)."""

from __future__ import annotations

from twofold.wiring import Services
from twofold.store.models import User


def recovery_sections(services: Services, user: User) -> dict:
    return {
        "email_state": services.recovery.email_method_state(user),
        "undelivered": services.recovery.undelivered_mail(user),
    }
