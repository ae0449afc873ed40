"""All tables. Each concern has its module; importing this package registers them all."""

from twofold.store.models.accounts import ROLES, Practice, User
from twofold.store.models.administration import EnrolmentDemand, SetupLink
from twofold.store.models.audit import AuditChainHead, AuditEvent
from twofold.store.models.base import Base, UTCDateTime
from twofold.store.models.factors import TotpCredential, WebAuthnChallenge, WebAuthnCredential
from twofold.store.models.recovery import EmailCode, EmailMethod, RecoveryCode, UndeliveredMail
from twofold.store.models.remembered import RememberedBrowser
from twofold.store.models.signin import SignInFlow, UserSession
from twofold.store.models.throttle import ThrottleFailure

__all__ = [
    "ROLES",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "EmailCode",
    "EmailMethod",
    "EnrolmentDemand",
    "Practice",
    "RecoveryCode",
    "RememberedBrowser",
    "SetupLink",
    "SignInFlow",
    "ThrottleFailure",
    "TotpCredential",
    "UTCDateTime",
    "UndeliveredMail",
    "User",
    "UserSession",
    "WebAuthnChallenge",
    "WebAuthnCredential",
]
