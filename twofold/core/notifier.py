"""Email: one notifier, a text and an HTML part, sent by SMTP off the request path.

Sending never blocks or fails a sign-in: messages go to a queue drained by one
background thread, which retries a failed send with back-off and logs the
outcome (never the body: it may hold a code). Without SMTP configured, messages
are written to an outbox folder as .eml files, and the log says where.

A message the user is waiting for (an emailed code) can be tried once at once
with ``send_now`` and a short timeout, so the answer can say whether it went out;
when that first try fails it joins the queue for the remaining retries. A message
given up on is reported to the subscribed ``DeliveryListener`` (which records it
for the member's Security page).
"""

from __future__ import annotations

import logging
import os
import queue
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

log = logging.getLogger("twofold.mail")

RETRY_DELAYS = (1.0, 5.0, 30.0)
# The synchronous first try of ``send_now``: long enough for a healthy relay, short
# enough that a person waiting for a code is told quickly when mail is down.
SEND_NOW_TIMEOUT = 5.0


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str
    html: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    user_id: int | None = None  # the member it is about, so an undelivered message can be shown to them


class DeliveryListener(Protocol):
    def undelivered(self, message: Message, attempts: int) -> None:
        """``message`` was given up on after ``attempts`` tries. Called on the mail thread; must not raise."""


class Notifier(Protocol):
    def send(self, message: Message) -> None:
        """Queue ``message``; returns at once. Delivery problems are logged, never raised."""

    def send_now(self, message: Message, timeout: float = SEND_NOW_TIMEOUT) -> bool:
        """Try once, in the caller's thread; True when delivered. On failure the message is
        queued for the remaining retries and False is returned. Never raises."""

    def subscribe(self, listener: DeliveryListener) -> None:
        """Tell ``listener`` about every message given up on."""

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the queue is empty; True when it is (for tests and shutdown)."""


class NullNotifier:
    def send(self, message: Message) -> None:
        return None

    def send_now(self, message: Message, timeout: float = SEND_NOW_TIMEOUT) -> bool:
        return True

    def subscribe(self, listener: DeliveryListener) -> None:
        return None

    def flush(self, timeout: float = 10.0) -> bool:
        return True


def build_email(message: Message, mail_from: str) -> EmailMessage:
    """The message with every header built by the standard library's ``email`` package.

    The recipient is one ``Address`` built from a plain addr-spec (a list, a display name or a
    line break in it raises ``ValueError`` here instead of reaching SMTP), and the library's
    default policy refuses CR/LF in any header value, so a name or subject can never add a header.
    """
    email = EmailMessage(policy=SMTP_POLICY)
    email["From"] = mail_from
    email["To"] = Address(addr_spec=single_address(message.to))
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain="twofold.localhost")
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


def single_address(value: str) -> str:
    """``value`` when it is exactly one plain address (addr-spec), else ``ValueError``."""
    try:
        address = Address(addr_spec=value)  # the library's parser: raises on anything but one addr-spec
    except (ValueError, IndexError, TypeError) as exc:
        raise ValueError("not one plain email address") from exc
    if address.display_name or not address.username or not address.domain or address.addr_spec != value.strip():
        raise ValueError("not one plain email address")
    return address.addr_spec


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    user: str | None = None
    password: str | None = None
    tls: str = "none"  # none | starttls | tls
    timeout: float = 10.0


@dataclass(frozen=True)
class _Job:
    message: Message
    delays: tuple[float, ...]  # wait before each try still to make
    tried: int = 0  # tries already made (by send_now)


class _QueuedNotifier:
    """A queue and one daemon thread; subclasses say how one message is delivered."""

    def __init__(self, mail_from: str, retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self.mail_from = mail_from
        self._retry_delays = retry_delays
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._failed = 0
        self._listeners: list[DeliveryListener] = []
        self._thread = threading.Thread(target=self._run, name="twofold-mail", daemon=True)
        self._thread.start()

    @property
    def failed(self) -> int:
        """Messages given up on after every retry."""
        return self._failed

    def subscribe(self, listener: DeliveryListener) -> None:
        self._listeners.append(listener)

    def send(self, message: Message) -> None:
        self._queue.put(_Job(message, (0.0, *self._retry_delays)))

    def send_now(self, message: Message, timeout: float = SEND_NOW_TIMEOUT) -> bool:
        try:
            self._deliver(build_email(message, self.mail_from), timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, then retried in the background
            log.warning(
                "mail send failed (attempt 1, now): %s: %s; retrying in the background", type(exc).__name__, exc
            )
            self._queue.put(_Job(message, self._retry_delays, tried=1))
            return False
        log.info("mail sent: %s (%s)", ",".join(message.tags) or "message", _mask(message.to))
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                self._deliver_with_retries(job)
            finally:
                self._queue.task_done()

    def _deliver_with_retries(self, job: _Job) -> None:
        message = job.message
        attempt = job.tried
        for delay in job.delays:
            attempt += 1
            if delay:
                time.sleep(delay)
            try:
                self._deliver(build_email(message, self.mail_from))
                log.info("mail sent: %s (%s)", ",".join(message.tags) or "message", _mask(message.to))
                return
            except Exception as exc:  # noqa: BLE001 - any delivery failure is retried, then logged
                log.warning("mail send failed (attempt %d): %s: %s", attempt, type(exc).__name__, exc)
        self._failed += 1
        log.error(
            "mail not delivered after %d attempts: %s (%s)",
            attempt,
            ",".join(message.tags) or "message",
            _mask(message.to),
        )
        for listener in self._listeners:
            try:
                listener.undelivered(message, attempt)
            except Exception:
                log.exception("recording an undelivered message failed")

    def _deliver(self, email: EmailMessage, timeout: float | None = None) -> None:
        raise NotImplementedError


class SmtpNotifier(_QueuedNotifier):
    def __init__(self, config: SmtpConfig, mail_from: str, retry_delays: tuple[float, ...] = RETRY_DELAYS) -> None:
        self._config = config
        super().__init__(mail_from, retry_delays)

    def _deliver(self, email: EmailMessage, timeout: float | None = None) -> None:
        config = self._config
        timeout = min(timeout, config.timeout) if timeout else config.timeout
        client: smtplib.SMTP
        if config.tls == "tls":
            client = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=timeout)
        with client:
            if config.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if config.user:
                client.login(config.user, config.password or "")
            # The envelope recipient is the one address the message is for, never a list parsed from headers.
            client.send_message(email, to_addrs=[str(email["To"].addresses[0].addr_spec)])


class OutboxNotifier(_QueuedNotifier):
    """Development without SMTP: each message becomes a file in ``folder``."""

    def __init__(self, folder: Path, mail_from: str) -> None:
        self._folder = folder
        super().__init__(mail_from, retry_delays=())

    def _deliver(self, email: EmailMessage, timeout: float | None = None) -> None:
        # Only the operator may read these: a set-up link in a message is a live credential.
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{email['Message-ID'].strip('<>').split('@')[0]}.eml"
        path = self._folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(bytes(email))
        log.info("no SMTP configured: mail written to %s", path)


def _mask(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
