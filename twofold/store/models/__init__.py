"""All tables. Each concern has its module; importing this package registers them all."""

from twofold.store.models.accounts import ROLES, Practice, User, account_by_email
from twofold.store.models.administration import EnrolmentDemand, SetupLink
from twofold.store.models.alerts import Alert, AlertDigest, AlertPreference
from twofold.store.models.apps import App, AppAccess
from twofold.store.models.audit import AuditChainHead, AuditEvent
from twofold.store.models.base import MAX_ID, Base, UTCDateTime
from twofold.store.models.factors import TotpCredential, WebAuthnChallenge, WebAuthnCredential
from twofold.store.models.oidc import (
    OidcAuthorizationCode,
    OidcAuthorizationRequest,
    OidcClient,
    OidcLogoutNotice,
    OidcSigningKey,
    OidcSubject,
    OidcToken,
)
from twofold.store.models.recovery import EmailCode, EmailMethod, RecoveryCode, ShownRecoveryCodes, UndeliveredMail
from twofold.store.models.remembered import RememberedBrowser
from twofold.store.models.signin import SignInFlow, UserSession
from twofold.store.models.throttle import ThrottleFailure, ThrottleWindow
from twofold.store.models.workstations import Workstation

__all__ = [
    "MAX_ID",
    "ROLES",
    "Alert",
    "AlertDigest",
    "AlertPreference",
    "App",
    "AppAccess",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "EmailCode",
    "EmailMethod",
    "EnrolmentDemand",
    "OidcAuthorizationCode",
    "OidcAuthorizationRequest",
    "OidcClient",
    "OidcLogoutNotice",
    "OidcSigningKey",
    "OidcSubject",
    "OidcToken",
    "Practice",
    "RecoveryCode",
    "RememberedBrowser",
    "SetupLink",
    "ShownRecoveryCodes",
    "SignInFlow",
    "ThrottleFailure",
    "ThrottleWindow",
    "TotpCredential",
    "UTCDateTime",
    "UndeliveredMail",
    "User",
    "UserSession",
    "WebAuthnChallenge",
    "WebAuthnCredential",
    "Workstation",
    "account_by_email",
]
