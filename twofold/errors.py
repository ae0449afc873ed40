"""Typed errors of the core. Front ends map each to an answer; none leaks a library's."""

from __future__ import annotations


class TwofoldError(Exception):
    """Base class. ``code`` is the stable machine-readable name given to clients."""

    code = "error"
    message = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message

    def fields(self) -> dict[str, str]:
        """Extra fields the JSON answer carries beside ``error`` and ``message`` (a link to act on, say)."""
        return {}


class InvalidCredentials(TwofoldError):
    code = "invalid_credentials"
    message = "The email or password is not right."


class InvalidCode(TwofoldError):
    code = "invalid_code"
    message = "That code is not right. Enter the current code from your authenticator app."


class CodeJustUsed(InvalidCode):
    """The right code, but the one accepted last (it confirmed the app a moment ago, or a form was
    sent twice): not a guess, so not counted toward the lockout."""

    message = (
        "That code was just used, and each code works once. Wait for your app to show the next code "
        "(a new one every 30 seconds), then enter it."
    )


class ClockOutOfSync(InvalidCode):
    message = (
        "That code is not right for the current time. Check that the clock on your phone "
        "is set automatically, then enter the new code."
    )


class Throttled(TwofoldError):
    code = "throttled"
    blocked_by: str | None = None  # the throttle key whose window is full (for the audit summary; never shown)

    def __init__(self, retry_after: int, what: str = "attempts") -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(f"Too many failed {what}. Try again in {_human_wait(self.retry_after)}.")


class FlowNotFound(TwofoldError):
    code = "flow_not_found"
    message = "This sign-in was not found. Start again from the sign-in page."


class FlowExpired(TwofoldError):
    code = "flow_expired"
    message = "This sign-in has expired. Start again from the sign-in page."


class NotFound(TwofoldError):
    code = "not_found"
    message = "Not found."


class Conflict(TwofoldError):
    code = "conflict"


class InvalidInput(TwofoldError):
    code = "invalid_input"


class MethodNotAvailable(TwofoldError):
    code = "method_not_available"
    message = "That sign-in method is not available for this account."


class DeliveryFailed(TwofoldError):
    """An email the user is waiting for could not be sent at once (it is retried in the background)."""

    code = "email_not_sent"
    message = (
        "We could not send the email just now. We will keep trying for a few minutes; if it does not arrive, "
        "use your authenticator app or a backup code, or ask your practice admin for help."
    )


class NotAuthenticated(TwofoldError):
    code = "not_authenticated"
    message = "Sign in to continue."


class Forbidden(TwofoldError):
    code = "forbidden"
    message = "You are not allowed to do that."


class TwoFactorRequired(Forbidden):
    """The practice requires two-factor authentication of this member and the grace period is over."""

    code = "two_factor_required"
    message = "Your practice requires two-factor authentication. Set it up to continue."


class AdminTwoFactorRequired(Forbidden):
    """An admin without two-factor authentication of their own: no administration until they turn it on.

    Applies on every practice whatever its policy: an admin's account opens every member's
    account, so a password alone never guards it (OWASP ASVS 4.0, 2.2.3 / NIST SP 800-63B AAL2).
    """

    code = "admin_two_factor_required"
    message = "Turn on two-factor authentication for your own account before you administer your practice."
    enrolment_url = "/account/security#authenticator"

    def fields(self) -> dict[str, str]:
        return {"enrolment_url": self.enrolment_url}


class CrossOriginRefused(Forbidden):
    code = "cross_origin_refused"
    message = "Exports are only given to this site's own pages. Use the Export button on the page."


class Unavailable(TwofoldError):
    """A dependency (the database, Redis) does not answer in time: nothing was changed, try again.

    Answered as 503 with ``Retry-After``: the request was not wrong, and a load balancer
    or client may retry it elsewhere or later (RFC 9110 §15.6.4).
    """

    code = "unavailable"
    message = "The service cannot reach its database. Try again shortly."

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class DatabaseUnavailable(Unavailable):
    """The database refused, dropped or did not answer a connection or statement in time."""


class RedisUnavailable(Unavailable):
    message = "The service cannot reach its shared counters (Redis). Try again shortly."


def _human_wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = (seconds + 59) // 60
    if minutes < 90:
        return f"{minutes} minutes"
    hours = (minutes + 59) // 60
    return f"{hours} hours"
