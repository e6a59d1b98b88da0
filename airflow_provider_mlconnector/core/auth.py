"""Auth objects for the HTTP core: static headers, and credentials renewed under a lock.

:class:`StoredCredentialAuth` is the single-flight pattern every renewable credential shares
(FreshBooks and QuickBooks OAuth with rotating refresh tokens, BambooHR OAuth, BILL sessions)::

    use the credential cached in memory / in the token store
    if it is missing or expired (or the vendor just said 401):
        with the token store's lock on this credential:
            re-read it: another task may have renewed it while we waited -> use theirs
            otherwise renew it at the vendor (one call), SAVE it, then use it

The new credential is persisted before it is used, so a crash can never lose a rotated refresh
token, and N tasks that find it expired together make exactly one renewal call.

A stored credential also names (by a hash, :func:`secrets_fingerprint`) the connection secrets that
obtained it, and only those secrets may reuse it: a connection whose password or client secret was
changed renews instead, so a wrong secret fails at once (``test_connection`` tells the truth) instead
of riding on a token that someone else's secret obtained. The renewal still continues the stored
refresh-token chain, so a wrong secret that is corrected later never breaks the chain.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_mlconnector.core.http import ApiAuth, ApiClient, ErrorInfo
from airflow_provider_mlconnector.core.secrets import mask
from airflow_provider_mlconnector.exceptions import (
    ApiError,
    AuthError,
    ReauthorizationRequiredError,
    RetryableApiError,
    WriteOutcomeUnknownError,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state.tokens import TokenStore

Credential = dict[str, Any]
#: The field of a stored credential naming the secrets that obtained it (a hash, never the secrets).
OBTAINED_WITH = "obtained_with"


def secrets_fingerprint(system: str, *secrets: str | None) -> str:
    """A short hash of the connection secrets that obtain a credential, kept next to it in the store.

    It lives only inside the encrypted value: it is compared, never logged or used as a key.
    """
    material = "\x1f".join([system, *(secret or "" for secret in secrets)])
    return hashlib.sha256(material.encode()).hexdigest()[:24]


class HeaderAuth(ApiAuth):
    """Static headers (BigCommerce ``X-Auth-Token``; never ``Bearer``)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = dict(headers)
        mask(*self.headers.values())

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self.headers)
        return request


class StoredCredentialAuth(ApiAuth):
    """A credential kept (encrypted) in the token store and renewed single-flight under its lock.

    Subclasses implement :meth:`renew` (the vendor call), :meth:`apply` (decorate a request) and,
    when the credential has a known lifetime, :meth:`is_expired`.

    :param tokens: the state store's token store.
    :param system: the system name (part of the store key).
    :param credential_key: identifies this credential within the system (tenant + client).
    :param proof: the connection secrets the vendor checks when renewing (client secret, password):
        a stored credential obtained with other secrets is never reused, it is renewed with these.
    :param conn_id: the Airflow connection, named in error messages.
    :param expiry_margin: renew this many seconds before the stated expiry.
    :param clock: epoch-seconds clock for expiry decisions (tests pass the sandbox's).
    """

    def __init__(
        self,
        *,
        tokens: TokenStore,
        system: str,
        credential_key: str,
        proof: Sequence[str | None],
        conn_id: str,
        expiry_margin: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tokens = tokens
        self.system = system
        self.credential_key = credential_key
        self.fingerprint = secrets_fingerprint(system, *proof)
        self.conn_id = conn_id
        self.expiry_margin = expiry_margin
        self.clock = clock
        self._current: Credential | None = None

    # --- vendor-specific -----------------------------------------------------------------
    @abstractmethod
    def renew(self, latest: Credential | None) -> Credential:
        """Obtain a new credential from the vendor. ``latest`` is what the store holds (or None)."""

    @abstractmethod
    def apply(self, request: requests.PreparedRequest, credential: Credential) -> None:
        """Put the credential on the request."""

    def is_expired(self, credential: Credential) -> bool:
        expires_at = credential.get("expires_at")
        return expires_at is not None and float(expires_at) - self.expiry_margin <= self.clock()

    def secrets_of(self, credential: Credential) -> list[str]:
        """Values to register with the log masker."""
        public = ("account_id", OBTAINED_WITH)
        return [str(v) for k, v in credential.items() if isinstance(v, str) and k not in public]

    def usable(self, credential: Credential) -> bool:
        """Unexpired, and obtained with this connection's secrets (anyone else's must renew)."""
        return credential.get(OBTAINED_WITH) == self.fingerprint and not self.is_expired(credential)

    # --- the single-flight dance ---------------------------------------------------------
    def credential(self) -> Credential:
        """A usable credential, renewing it (once, under the lock) when missing or expired."""
        if self._current is None or self.is_expired(self._current):
            stored = self.tokens.get(self.system, self.credential_key)
            if stored is not None and self.usable(stored):
                self._use(stored)
            else:
                self._renew_locked(rejected=None)
        assert self._current is not None
        return self._current

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        self.apply(request, self.credential())
        return request

    def refresh(self, failure: ApiError) -> bool:
        """The vendor rejected the credential we used: renew it once (unless someone already did)."""
        self._renew_locked(rejected=self._current)
        return True

    def _renew_locked(self, rejected: Credential | None) -> None:
        with self.tokens.locked(self.system, self.credential_key) as slot:
            latest = slot.value
            if latest is not None and self.usable(latest) and not self._same(latest, rejected):
                # Another task renewed it while we waited for the lock: use theirs.
                self._use(latest)
                return
            fresh = self.stamped(self.renew(latest))
            slot.save(fresh)  # persist before use: a rotated refresh token must never be lost
        self._use(fresh)

    def stamped(self, credential: Credential) -> Credential:
        """``credential`` marked as obtained with this connection's secrets (see :meth:`usable`)."""
        return {**credential, OBTAINED_WITH: self.fingerprint}

    def _use(self, credential: Credential) -> None:
        mask(*self.secrets_of(credential))
        self._current = credential

    def _same(self, a: Credential, b: Credential | None) -> bool:
        # Never treat the credential the vendor just rejected as fresh, even if its expiry says so.
        return b is not None and a == b


class BearerMixin:
    """``Authorization: Bearer <access_token>``."""

    def apply(self, request: requests.PreparedRequest, credential: Credential) -> None:
        request.headers["Authorization"] = f"Bearer {credential['access_token']}"


def expiry_from(payload: Mapping[str, Any], requested_at: float) -> float | None:
    """Absolute expiry (epoch seconds) of a token response: ``expires_in`` counted from our own clock
    at the moment we asked. A vendor's ``created_at`` is its clock; skew against ours would make us
    refresh on every call or use dead tokens, so it is deliberately ignored."""
    expires_in = payload.get("expires_in")
    return None if expires_in is None else requested_at + float(expires_in)


def chain_key(client_id: str, refresh_token: str | None, *scope: str) -> str:
    """The token-store key of one refresh-token chain: scope, client id and a short hash of the
    connection's *initial* refresh token. A new consent (a new token in the connection) starts a
    new chain instead of reusing a revoked one; the hash, never the token, keeps the key loggable."""
    digest = hashlib.sha256((refresh_token or "").encode()).hexdigest()[:12]
    return ":".join([*scope, client_id, digest])


#: The token-endpoint error that blames the client credentials, not the grant (RFC 6749 5.2).
CLIENT_REJECTED = "invalid_client"


def oauth_error_parser(response: requests.Response) -> ErrorInfo:
    """RFC 6749 token-endpoint errors: a rejected grant is fatal (re-authorize), not retryable."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = str(body.get("error") or "") or None
    message = str(body.get("error_description") or body.get("error") or response.reason or "token request failed")
    if code in {
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "invalid_request",
    } or response.status_code in (
        400,
        401,
    ):
        return ErrorInfo(message=message, code=code, kind="auth_fatal")
    return ErrorInfo(message=message, code=code)


class RotatingOAuth(BearerMixin, StoredCredentialAuth):
    """OAuth 2.0 with a refresh token that may rotate on every use (FreshBooks: single use).

    The first refresh uses the connection's initial refresh token; every later one uses the newest
    token from the store.

    A refresh whose answer is lost (the connection dropped, a 5xx) may have rotated the token at the
    vendor already. The same grant is sent once more, still under the lock: a vendor that accepts a
    retried refresh token for a while answers it, and the chain goes on. A refused grant (revoked,
    used, or refused on that retry) is a :class:`ReauthorizationRequiredError` naming the connection
    and the consent command; a wrong client secret an :class:`AuthError` naming that field.

    :param token_client: an :class:`ApiClient` (no auth) on the token host.
    :param token_path: the token endpoint path.
    :param reauthorize: the shell command that re-authorizes the connection (the consent helper).
    :param client_auth: ``"body"`` puts client id/secret in the form; ``"basic"`` uses HTTP Basic.
    :param extra_fields: more form fields (FreshBooks wants ``redirect_uri``).
    """

    def __init__(
        self,
        *,
        token_client: ApiClient,
        token_path: str,
        client_id: str,
        client_secret: str,
        initial_refresh_token: str | None,
        reauthorize: str,
        client_auth: str = "body",
        extra_fields: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(proof=(client_id, client_secret), **kwargs)
        self.token_client = token_client
        self.token_path = token_path
        self.client_id = client_id
        self.client_secret = client_secret
        self.initial_refresh_token = initial_refresh_token
        self.reauthorize = reauthorize
        self.client_auth = client_auth
        self.extra_fields = dict(extra_fields or {})
        mask(client_secret, initial_refresh_token)

    def renew(self, latest: Credential | None) -> Credential:
        refresh_token = (latest or {}).get("refresh_token") or self.initial_refresh_token
        if not refresh_token:
            raise self._broken(f"no {self.system} refresh token is stored for this connection")
        grant = {"grant_type": "refresh_token", "refresh_token": str(refresh_token)}
        try:
            payload = self.exchange(grant)
        except WriteOutcomeUnknownError:
            log.warning("%s: the refresh answer was lost; sending the same grant once more", self.system)
            try:
                payload = self.exchange(grant, after_lost_answer=True)
            except WriteOutcomeUnknownError as again:
                # Still unknown: keep the stored token (the vendor may accept it yet) and let the task retry.
                raise RetryableApiError(
                    f"{self.system}: the answer to the refresh of connection '{self.conn_id}' was lost twice; "
                    "the stored refresh token is kept, retry later",
                    system=self.system,
                    status=again.status,
                ) from None
        # Some vendors omit the refresh token when it did not rotate: keep the one we have.
        payload.setdefault("refresh_token", refresh_token)
        return payload

    def exchange(self, grant: Mapping[str, str], *, after_lost_answer: bool = False) -> Credential:
        """POST a grant (refresh or authorization code) to the token endpoint; return the credential.

        :param after_lost_answer: this grant was sent before and its answer lost (for the error text).
        """
        form = {**grant, **self.extra_fields}
        headers: dict[str, str] = {"Accept": "application/json"}
        if self.client_auth == "basic":
            basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        else:
            form.update(client_id=self.client_id, client_secret=self.client_secret)
        requested_at = self.clock()
        try:
            body = self.token_client.send_json("POST", self.token_path, data=form, headers=headers)
        except AuthError as exc:
            raise self._rejection(grant, exc, after_lost_answer) from None
        credential: Credential = dict(body)
        credential["expires_at"] = expiry_from(credential, requested_at)
        mask(*self.secrets_of(credential))
        return credential

    def _rejection(self, grant: Mapping[str, str], exc: AuthError, after_lost_answer: bool) -> AuthError:
        """The token endpoint's refusal, naming what to fix: the client secret, or the grant."""
        common: dict[str, Any] = {
            "system": self.system,
            "status": exc.status,
            "code": exc.code,
            "request_id": exc.request_id,
        }
        because = f"({exc.code or exc.status}: {exc.message})"
        if exc.code == CLIENT_REJECTED or (exc.code is None and exc.status == 401):
            return AuthError(
                f"{self.system} rejected the OAuth client of connection '{self.conn_id}' {because}: "
                "check the client id (login) and the client secret (password)",
                **common,
            )
        what = {
            "refresh_token": "the refresh token; it was revoked or already used",
            "authorization_code": "the authorization code; it expired (codes live minutes) or was already used",
        }.get(grant.get("grant_type", ""), "the grant")
        if after_lost_answer:
            what = (
                "the refresh token sent again after its answer was lost (the token had rotated at the "
                "vendor): the chain is broken"
            )
        return self._broken(f"{self.system} rejected {what} {because}", **common)

    def _broken(self, why: str, **details: Any) -> ReauthorizationRequiredError:
        details.setdefault("system", self.system)
        return ReauthorizationRequiredError(why, conn_id=self.conn_id, command=self.reauthorize, **details)
