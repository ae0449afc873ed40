"""Password hashing: argon2id through argon2-cffi, wrapped so nothing above imports it.

Each hash costs ``memory_kib`` of RAM for its duration; a semaphore bounds how
many run at once, so a burst of sign-ins queues instead of exhausting memory.
"""

from __future__ import annotations

import threading

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasher:
    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int, concurrency: int) -> None:
        self._argon2 = _Argon2(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)
        self._slots = threading.BoundedSemaphore(concurrency)
        # Verified against when the email is unknown, so both answers cost one hash.
        self._dummy = self._argon2.hash("twofold-timing-equaliser")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._argon2.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; False for a mismatch or an unusable hash.

        With ``stored_hash=None`` (no such account) it still does the work of one
        verification, so timing does not tell whether the account exists.
        """
        with self._slots:
            try:
                return self._argon2.verify(stored_hash or self._dummy, password) and stored_hash is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True
