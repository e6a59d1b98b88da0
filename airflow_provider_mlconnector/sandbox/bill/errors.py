"""BILL v3 error codes and the one exception the emulator raises.

Every error is answered as BILL's v3 error array::

    [{"timestamp": "...", "code": "BDC_1109", "severity": "ERROR", "category": "REQUEST",
      "message": "Session is invalid.  Please log in."}]

Codes marked UNCONFIRMED are the emulator's choice where the dossier documents the behaviour but
not its code (listed in README.md).
"""

from __future__ import annotations

# Documented codes (dossier B2-B4).
SYSTEM_ERROR = "BDC_1001"
BAD_CREDENTIALS = "BDC_1101"
BAD_DEV_KEY = "BDC_1102"
SESSION_INVALID = "BDC_1109"
API_NOT_SUPPORTED = "BDC_1121"
INVALID_ENTITY = "BDC_1143"
HOURLY_LIMIT = "BDC_1144"
CONCURRENCY_LIMIT = "BDC_1322"

# UNCONFIRMED: chosen by the emulator.
INVALID_REQUEST = "BDC_1100"  # bad query parameter (filters, sort, max, page), header or JSON
NOT_FOUND = "BDC_1122"  # unknown entity id
MFA_REQUIRED = "BDC_1363"  # POST /v3/payments from a session that is not MFA-trusted

SESSION_INVALID_MESSAGE = "Session is invalid.  Please log in."
CONCURRENCY_MESSAGE = "Max number of concurrent requests per organization reached."


class BillError(Exception):
    """One failed call: a BDC code, an HTTP status and one message per problem found.

    :param messages: several messages (one per invalid field) share the code; defaults to ``message``.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        category: str = "REQUEST",
        messages: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.category = category
        self.messages = messages or [message]


class ValidationFailed(BillError):
    """Field-level problems in a request body (``address.country: ...``), all reported at once."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(INVALID_ENTITY, messages[0], status=400, category="REQUEST", messages=messages)


class NotFound(BillError):
    def __init__(self, entity: str, entity_id: str) -> None:
        super().__init__(NOT_FOUND, f"{entity} {entity_id} was not found.", status=404, category="APPLICATION")


class InvalidRequest(BillError):
    def __init__(self, message: str) -> None:
        super().__init__(INVALID_REQUEST, message, status=400, category="REQUEST")
