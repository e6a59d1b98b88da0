"""The shared HTTP core every hook uses.

One :class:`ApiClient` per hook owns one ``requests.Session``. It puts a timeout on every call,
turns every response into either JSON or one exception from :mod:`..exceptions` (one place:
:meth:`ApiClient._raise_for`), retries what is safe to retry with exponential backoff and full
jitter (tenacity) while honouring ``Retry-After`` and vendor reset hints, refreshes credentials once
on an auth failure, and logs each call without credentials.

Vendor differences are plugged in, not forked:

* an :class:`ApiAuth` (a ``requests`` auth object that can also refresh itself after a failure),
* an error parser turning the vendor's error body into an :class:`ErrorInfo`,
* an optional :class:`Throttle` (client-side budgets and concurrency caps).
"""

from __future__ import annotations

import codecs
import email.message
import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter

from airflow_provider_mlconnector.core.fence import check_fence
from airflow_provider_mlconnector.core.paging import PageGuard, Paginator
from airflow_provider_mlconnector.core.secrets import SENSITIVE_WORDS, redact_text
from airflow_provider_mlconnector.exceptions import (
    ApiError,
    AuthError,
    FatalApiError,
    NotFoundError,
    RateLimitedError,
    RecordRejectedError,
    RetryableApiError,
    WriteOutcomeUnknownError,
)

log = logging.getLogger(__name__)

ErrorKind = Literal["auth_expired", "auth_fatal", "rate_limited", "retryable", "fatal", "record"]
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ErrorInfo:
    """What a vendor error body says, in vendor-neutral terms.

    ``kind`` overrides the status-based classification when the vendor puts the meaning in the
    body (BILL's ``BDC_1109`` session expiry, Expensify's ``responseCode`` under HTTP 200...).
    """

    message: str
    code: str | None = None
    kind: ErrorKind | None = None
    retry_after: float | None = None


ErrorParser = Callable[[requests.Response], ErrorInfo]


def default_error_parser(response: requests.Response) -> ErrorInfo:
    """Fallback parser: the body's ``message``/``error`` field, or the reason phrase."""
    try:
        body = response.json()
    except ValueError:
        return ErrorInfo(message=response.reason or f"HTTP {response.status_code}")
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error_description") or body.get("error")
        code = body.get("code") or body.get("error")
        return ErrorInfo(message=str(msg or response.reason), code=str(code) if code else None)
    return ErrorInfo(message=response.reason or f"HTTP {response.status_code}")


class ApiAuth(requests.auth.AuthBase):
    """A ``requests`` auth object that may also renew itself once after an auth failure.

    Subclasses implement :meth:`__call__` (decorate the request) and, when the scheme has a renewal
    path (OAuth refresh, session re-login), :meth:`refresh`.
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request

    def refresh(self, failure: ApiError) -> bool:
        """Renew credentials after ``failure``. Return True when the call should be retried once."""
        return False


class Throttle(Protocol):
    """Client-side rate control around each request (budgets, concurrency caps, header hints)."""

    def acquire(self) -> None: ...

    def release(self) -> None: ...

    def observe(self, response: requests.Response) -> None: ...


@dataclass(frozen=True)
class RetrySettings:
    """How hard to try. Waits use full jitter; a vendor's ``Retry-After`` is honoured when given.

    :param max_attempts: attempts per call, the first included.
    :param base_wait: first backoff ceiling in seconds (doubles each attempt).
    :param max_wait: cap of one wait. A vendor asking for longer than this fails the call clearly
        instead of sleeping (e.g. BILL's hourly cap), so the task can be rescheduled.
    """

    max_attempts: int = 6
    base_wait: float = 1.0
    max_wait: float = 90.0


@dataclass
class ApiClient:
    """One vendor API: a base URL, an auth, an error parser, a throttle and a retry policy."""

    system: str
    base_url: str
    auth: ApiAuth | None = None
    error_parser: ErrorParser = default_error_parser
    throttle: Throttle | None = None
    #: For APIs that report failures inside a 2xx body (Expensify's ``responseCode``).
    success_body_error: Callable[[requests.Response], ErrorInfo | None] | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    timeout: tuple[float, float] = (10.0, 60.0)
    headers: Mapping[str, str] = field(default_factory=dict)
    request_id_headers: tuple[str, ...] = ("x-request-id", "request-id", "intuit_tid", "x-correlation-id")
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session = requests.Session()
        # Retries belong to tenacity below, never to urllib3 (which would replay POSTs blindly).
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": "airflow-provider-mlconnector"})
        self.session.headers.update(self.headers)

    # ------------------------------------------------------------------ public API

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        write: bool | None = None,
    ) -> requests.Response:
        """Send one call with retries; return the successful response or raise an ``ApiError``.

        :param idempotent: force the retry semantics; defaults to True for GET/PUT/DELETE. Mark a
            POST idempotent only when the vendor dedupes it (QuickBooks ``requestid``).
        :param write: whether a 400/422 is a record-level rejection (default: any non-GET).
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        if write is None:
            write = method not in {"GET", "HEAD", "OPTIONS"}
        url = self.url(path)
        call = _Call(method, url, params, json, data, headers, idempotent, write)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(_should_retry),
            sleep=self.sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )
        return retrying(self._send_with_auth_refresh, call)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return _json_of(self.request("GET", path, **kwargs), self.system)

    def send_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return _json_of(response, self.system) if response.content else None

    def paginate(
        self,
        path: str,
        paginator: Paginator,
        *,
        params: Mapping[str, Any] | None = None,
        records: Callable[[Any], list[Any]],
        method: str = "GET",
        json: Any = None,
    ) -> Iterator[Any]:
        """Yield records page by page until ``paginator`` says the last page was read.

        A :class:`PageGuard` raises ``PagingError`` instead of following a pager that loops.
        """
        query: dict[str, Any] = dict(params or {})
        paginator.init_request(query)
        guard = PageGuard(self.system, f"{method} {path}", paginator)
        while True:
            response = self.request(method, path, params=query, json=json, write=False, idempotent=True)
            payload = _json_of(response, self.system) if response.content else None
            page = records(payload) if payload is not None else []
            guard.admit(page)
            yield from page
            paginator.update_state(payload, page)
            if not paginator.has_next_page:
                return
            guard.before_next()
            paginator.update_request(query)

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ internals

    def _send_with_auth_refresh(self, call: _Call) -> requests.Response:
        try:
            return self._send_once(call)
        except AuthError as failure:
            if failure.renewable and self.auth is not None and self.auth.refresh(failure):
                log.info("%s: credentials renewed after %s; retrying once", self.system, failure.code or "401")
                return self._send_once(call)
            raise

    def _send_once(self, call: _Call) -> requests.Response:
        # Prepare first: applying the auth may renew the credential (a login, a token refresh),
        # which is itself a call through a throttle. Doing it while holding a throttle permit
        # deadlocks as soon as every permit is held by a caller waiting for that renewal.
        prepared = self.session.prepare_request(
            requests.Request(
                call.method,
                call.url,
                params=call.params,
                json=call.json,
                data=call.data,
                headers=dict(call.headers or {}),
                auth=self.auth,
            )
        )
        if self.throttle is not None:
            self.throttle.acquire()
        started = time.monotonic()
        try:
            if call.write:
                check_fence()  # after the throttle wait: a writer that lost its claim never sends
            response = self.session.send(prepared, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise self._transport_error(call, exc) from None
        finally:
            if self.throttle is not None:
                self.throttle.release()
        if self.throttle is not None:
            self.throttle.observe(response)
        self._log_call(call, response, time.monotonic() - started)
        if 200 <= response.status_code < 300:
            hidden = self.success_body_error(response) if self.success_body_error else None
            if hidden is None:
                return response
            raise self._error_for(call, response, hidden)
        raise self._error_for(call, response, self.error_parser(response))

    def _transport_error(self, call: _Call, exc: requests.RequestException) -> ApiError:
        never_sent = isinstance(exc, requests.ConnectTimeout) or (
            isinstance(exc, requests.ConnectionError) and _is_connect_failure(exc)
        )
        message = f"{type(exc).__name__} calling {call.method} {_safe_url(call.url)}"
        if call.idempotent or never_sent:
            return RetryableApiError(message, system=self.system)
        return WriteOutcomeUnknownError(
            message + ": the write may have been committed; look it up before creating again",
            system=self.system,
        )

    def _error_for(self, call: _Call, response: requests.Response, info: ErrorInfo) -> ApiError:
        status = response.status_code
        common: dict[str, Any] = {
            "system": self.system,
            "status": status,
            "code": info.code,
            "request_id": self._request_id(response),
            "body": redact_text(response.text[:500]),
        }
        kind = info.kind or _kind_for_status(status, call.write)
        retry_after = info.retry_after if info.retry_after is not None else _retry_after(response)
        if kind in ("auth_expired", "auth_fatal"):
            return AuthError(info.message, renewable=kind == "auth_expired", **common)
        if kind == "rate_limited":
            return RateLimitedError(info.message, retry_after=retry_after, **common)
        if kind == "retryable":
            if call.idempotent:
                return RetryableApiError(info.message, retry_after=retry_after, **common)
            return WriteOutcomeUnknownError(info.message, retry_after=retry_after, **common)
        if kind == "record":
            return RecordRejectedError(info.message, **common)
        if status == 404:
            return NotFoundError(info.message, **common)
        return FatalApiError(info.message, **common)

    def _request_id(self, response: requests.Response) -> str | None:
        for name in self.request_id_headers:
            if value := response.headers.get(name):
                return value
        return None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        attempt = state.attempt_number
        ceiling = min(self.retry.max_wait, self.retry.base_wait * 2 ** (attempt - 1))
        hinted = getattr(error, "retry_after", None)
        if hinted is not None:
            if hinted > self.retry.max_wait:
                raise RateLimitedError(
                    f"vendor asks to wait {hinted:.0f}s, more than the configured maximum "
                    f"{self.retry.max_wait:.0f}s; failing so the task can be rescheduled",
                    system=self.system,
                    status=getattr(error, "status", None),
                    code=getattr(error, "code", None),
                    retry_after=hinted,
                )
            # Honour the hint and add a little jitter so parallel workers do not stampede.
            return float(hinted) + random.uniform(0, min(1.0, ceiling))
        return random.uniform(0, ceiling)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s: attempt %d failed (%s); retrying in %.1fs", self.system, state.attempt_number, error, wait)

    def _log_call(self, call: _Call, response: requests.Response, elapsed: float) -> None:
        log.debug(
            "%s %s %s -> %s in %.0f ms",
            self.system,
            call.method,
            _safe_url(response.request.url or call.url),
            response.status_code,
            elapsed * 1000,
        )


@dataclass(frozen=True)
class _Call:
    method: str
    url: str
    params: Any
    json: Any
    data: Any
    headers: Mapping[str, str] | None
    idempotent: bool
    write: bool


def _should_retry(exc: BaseException) -> bool:
    return isinstance(exc, RetryableApiError) and not isinstance(exc, WriteOutcomeUnknownError)


def _kind_for_status(status: int, write: bool) -> ErrorKind:
    if status == 401:
        return "auth_expired"
    if status == 403:
        return "auth_fatal"
    if status == 429:
        return "rate_limited"
    if status in RETRYABLE_STATUSES or status >= 500:
        return "retryable"
    if write and status in (400, 422):
        return "record"
    return "fatal"


def _is_connect_failure(exc: requests.ConnectionError) -> bool:
    """True when the request provably never reached the server (refused, DNS, connect timeout)."""
    text = repr(exc.args)
    return any(marker in text for marker in ("NewConnectionError", "ConnectTimeoutError", "NameResolutionError"))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def declared_charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a ``Content-Type`` value (lower case), or ``None`` when there is none."""
    if not content_type:
        return None
    header = email.message.Message()
    header["content-type"] = content_type
    return header.get_content_charset() or None


def decode_text(content: bytes, content_type: str | None) -> str:
    """A body as text: in the charset its ``Content-Type`` declares, else UTF-8 (a leading BOM is dropped).

    Never guessed, never patched with replacement characters: a "Caf\ufffd" vendor name would be synced as
    data. Undeclared means UTF-8, the only encoding of JSON between systems (RFC 8259) and what every vendor
    here sends; requests would instead guess, or assume ISO-8859-1 for ``text/*``.

    :raises UnicodeError: the bytes are not valid in that charset, or the charset is unknown.
    """
    charset = declared_charset(content_type) or "utf-8"
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        raise UnicodeError(f"in an unknown charset {charset[:40]!r}") from None
    name = "UTF-8" if codec == "utf-8" else codec
    try:
        return content.decode("utf-8-sig" if codec == "utf-8" else codec)
    except UnicodeDecodeError as exc:
        raise UnicodeError(f"not valid {name} (byte 0x{content[exc.start]:02x} at offset {exc.start})") from None


def body_text(response: requests.Response, system: str) -> str:
    """The response body as :func:`decode_text` reads it; a body that cannot be read is a ``FatalApiError``."""
    try:
        return decode_text(response.content, response.headers.get("Content-Type"))
    except UnicodeError as exc:
        # The same bytes would come back on a retry: fatal, and named so the vendor can be asked.
        raise FatalApiError(
            f"the response body is {exc}; refused rather than guessed", system=system, status=response.status_code
        ) from None


def _json_of(response: requests.Response, system: str) -> Any:
    text = body_text(response, system)
    try:
        return json.loads(text)
    except ValueError:
        raise FatalApiError(
            "expected a JSON body",
            system=system,
            status=response.status_code,
            body=redact_text(text[:200]),
        ) from None


def _safe_url(url: str) -> str:
    """The URL with credentials and sensitive query values removed, for logs and errors."""
    parts = urlsplit(url)
    query = [
        (k, "***" if any(word in k.lower() for word in SENSITIVE_WORDS) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))
