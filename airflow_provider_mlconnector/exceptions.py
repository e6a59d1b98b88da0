"""The one exception tree of the provider.

Every failure the hooks, operators and state store raise is one of these, so that a task, a
retry policy or an on-call engineer can tell at a glance what to do about it::

    MLConnectorError
    ├── ConfigurationError          bad or missing connection fields / settings   -> fail, no retry
    ├── ApiError                    a vendor answered (or failed to answer) a call
    │   │                           (.system, .status, .code, .request_id, .body: redacted)
    │   ├── RetryableApiError       429, 5xx, timeouts, vendor throttle codes     -> back off, retry
    │   │   ├── RateLimitedError    quota spent; .retry_after seconds when the vendor said so
    │   │   └── WriteOutcomeUnknownError
    │   │                           a write was sent but its answer was lost (timeout, dropped
    │   │                           connection, 5xx): it may have been committed. Never re-POST
    │   │                           blindly; look the record up by its natural key first.
    │   └── FatalApiError           other 4xx                                      -> fail the task
    │       ├── AuthError           401/403 after one refresh, a wrong secret      -> fix the connection
    │       │   └── ReauthorizationRequiredError
    │       │                           the OAuth token chain is broken (refresh token revoked, used,
    │       │                           or rotated by an answer that was lost): names the connection
    │       │                           and the consent command that re-authorizes it
    │       ├── NotFoundError       404 on a read
    │       └── PagingError         the vendor's pager did not move on (a cursor came back, the same
    │                               page twice, more pages than it announced): stopped, no row twice
    ├── RecordError                 one record cannot be written                   -> dead-letter
    │   ├── MappingError            no GL account / missing reference / unmappable; never a guess
    │   └── RecordRejectedError     the vendor rejected this record (validation); also an ApiError
    ├── NotLinkedYetError           a record references one that is not synced yet -> park, re-fetch
    │                               by id every run until the reference resolves (never "done")
    ├── SyncIncompleteError         some records of a task hit transient errors    -> retry the task
    └── StateBusyError              the state store was busy (SQLite's write lock, a credential lock
                                    held past LOCK_WAIT_SECONDS)                   -> retry the task

Operators catch ``RecordError`` per record, put the record in the dead-letter queue and go on.
Nothing catches bare ``Exception``.
"""

from __future__ import annotations

from typing import Any


class MLConnectorError(Exception):
    """Root of every error raised by this provider."""


class ConfigurationError(MLConnectorError):
    """A connection field or a setting is missing or invalid. Retrying cannot help."""


class ApiError(MLConnectorError):
    """A vendor API call failed.

    :param system: which system answered (``freshbooks``, ``bill``, ...).
    :param status: HTTP status, or ``None`` when no response arrived.
    :param code: the vendor's own error code (``BDC_1109``, ``invalid_grant``, ``6240``...).
    :param request_id: the vendor's request id header when present, for support tickets.
    :param body: a short, redacted excerpt of the response body.
    """

    def __init__(
        self,
        message: str,
        *,
        system: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = body

    def __str__(self) -> str:
        parts = [f"[{self.system}]"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        parts.append(self.message)
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description for audit rows and dead letters (already redacted)."""
        return {
            "error": type(self).__name__,
            "system": self.system,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "request_id": self.request_id,
        }


class RetryableApiError(ApiError):
    """Transient: rate limits, server errors, timeouts. Safe to retry after a wait."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RateLimitedError(RetryableApiError):
    """The vendor's quota is spent; ``retry_after`` says how long to wait when known."""


class WriteOutcomeUnknownError(RetryableApiError):
    """A non-idempotent write was sent but no trustworthy answer came back.

    The vendor may have committed it. The caller must find the record by its natural key before
    any new create; the HTTP core never retries such a write by itself.
    """


class FatalApiError(ApiError):
    """A client error that a retry cannot fix."""


class AuthError(FatalApiError):
    """Credentials were rejected even after one refresh. A human must re-authorize.

    ``renewable`` marks a rejection that one refresh/re-login may cure (an expired access token or
    session); the HTTP core tries that once before letting the error through.
    """

    def __init__(self, message: str, *, renewable: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.renewable = renewable


class ReauthorizationRequiredError(AuthError):
    """The OAuth token chain of a connection is broken: only a new consent can mend it.

    Raised when the vendor refuses the stored refresh token (revoked, already used, or rotated by a
    refresh whose answer was lost and whose retry the vendor refused). Retrying cannot help.

    :param conn_id: the Airflow connection to re-authorize.
    :param command: the shell command that does it (the consent helper).
    """

    def __init__(self, message: str, *, conn_id: str, command: str, **kwargs: Any) -> None:
        super().__init__(f"{message}; re-authorize connection '{conn_id}': run `{command}`", **kwargs)
        self.conn_id = conn_id
        self.command = command


class NotFoundError(FatalApiError):
    """The requested resource does not exist."""


class PagingError(FatalApiError):
    """A list's paging would loop or repeat rows; raised by ``core.paging.PageGuard`` instead.

    Re-sending the same call cannot help: the vendor handed out a cursor again, answered the same
    page twice, or kept announcing more pages than its first answer said.
    """


class RecordError(MLConnectorError):
    """One record cannot be written; it goes to the dead-letter queue with ``reason``.

    :param reason: a sentence an accountant can act on.
    :param kind: a stable machine tag (``unmapped_account``, ``missing_reference``, ``validation``).
    """

    def __init__(self, reason: str, *, kind: str = "validation") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class MappingError(RecordError):
    """The record cannot be mapped to the target (unmapped GL account, unknown vendor...)."""

    def __init__(self, reason: str, *, kind: str = "unmapped") -> None:
        super().__init__(reason, kind=kind)


class RecordRejectedError(RecordError, ApiError):
    """The vendor rejected this one record (a validation error on a write)."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        ApiError.__init__(self, message, **kwargs)
        self.reason = str(self)
        self.kind = "validation"


class NotLinkedYetError(MLConnectorError):
    """The record references another one (its vendor, its bill) that is not in the ID map yet.

    Not a dead letter: the engine parks the record and re-fetches it by id on every run until
    the reference resolves, so it is never counted done and never lost.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SyncIncompleteError(MLConnectorError):
    """Some records of this task hit transient errors; the task fails so that Airflow retries it.

    The retry resumes them through the ID map's claim protocol, so nothing is created twice.
    """


class StateBusyError(MLConnectorError):
    """The state store was busy: another process held SQLite's write lock (or a credential's lock)
    for longer than ``LOCK_WAIT_SECONDS``. Nothing was written; retrying the task is safe."""
