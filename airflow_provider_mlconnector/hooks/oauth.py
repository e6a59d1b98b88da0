"""What the OAuth systems' hooks share: consent without code, and the token chain it starts.

FreshBooks, QuickBooks Online and BambooHR (OAuth mode) grant access the same way: the user opens an
authorize URL, allows the app, the vendor redirects to the app's redirect URI with ``?code=...``
(QuickBooks also with ``realmId``), and the code is exchanged once for an access token and the first
refresh token of a chain. :class:`OAuthHook` does all of that; a vendor's hook only declares its app
(:attr:`OAuthHook.oauth_app`), builds its refresh flow (:meth:`OAuthHook.token_flow`), says how its
chains are keyed (:meth:`OAuthHook.chain_key_for`) and what new tokens reach
(:meth:`OAuthHook.reached_by`). The command-line side is ``hooks/consent.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlencode

from airflow_provider_mlconnector.exceptions import ConfigurationError
from airflow_provider_mlconnector.hooks.base import MLConnectorHook

if TYPE_CHECKING:
    from airflow_provider_mlconnector.core.auth import Credential, RotatingOAuth

#: ``python -m`` module of the consent helper (see :meth:`OAuthHook.consent_command`).
CONSENT_MODULE = "airflow_provider_mlconnector.hooks.consent"


class ConsentError(ConfigurationError):
    """The authorization did not complete (denied, wrong state, no code, no refresh token)."""


@dataclass(frozen=True)
class OAuthApp:
    """The OAuth client a connection names, as consent needs it."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    authorize_url: str


@dataclass(frozen=True)
class Reached:
    """What new tokens reached: lines to show, connection extras to set, advice."""

    lines: list[str]
    extras: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConsentResult:
    """What a consent stored (the chain key) and what the connection needs now (its extras)."""

    system: str
    credential_key: str
    extras: dict[str, str] = field(repr=False)  # refresh_token first, then e.g. realm_id
    reached: list[str]
    notes: list[str]

    @property
    def refresh_token(self) -> str:
        return self.extras["refresh_token"]


class OAuthHook(MLConnectorHook):
    """A hook whose system grants access by OAuth consent and rotates refresh tokens."""

    #: scopes asked for when the user names none (``None``: the app's registered scopes).
    consent_scope: ClassVar[str | None] = None

    # ------------------------------------------------------------------ what a vendor declares

    @property
    def oauth_app(self) -> OAuthApp:
        """Client id and secret, redirect URI and authorize endpoint of this connection's app."""
        raise NotImplementedError

    def token_flow(self, credential_key: str) -> RotatingOAuth:
        """The refresh flow of the chain stored under ``credential_key`` (also exchanges codes)."""
        raise NotImplementedError

    def chain_key_for(self, refresh_token: str, redirect: Mapping[str, str]) -> str:
        """The token-store key of the chain a consent starts (what the hook computes once the new
        refresh token is in the connection). ``redirect``: the parameters of the consent redirect."""
        raise NotImplementedError

    def reached_by(self, credential: Credential, credential_key: str, redirect: Mapping[str, str]) -> Reached:
        """What the fresh tokens of a consent open (the businesses, the company)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared

    def consent_command(self) -> str:
        """The shell command that (re-)authorizes this connection."""
        return f"python -m {CONSENT_MODULE} {self.conn_type} --conn-id {self.conn_id}"

    def authorize_url(self, *, state: str, scope: str | None = None) -> str:
        """The browser URL where the user grants this app access.

        :param state: an unguessable value echoed back to the redirect (CSRF protection).
        :param scope: space-separated scopes; :attr:`consent_scope` when omitted.
        """
        app = self.oauth_app
        params = {"client_id": app.client_id, "response_type": "code", "redirect_uri": app.redirect_uri, "state": state}
        if scope or self.consent_scope:
            params["scope"] = str(scope or self.consent_scope)
        return f"{app.authorize_url}?{urlencode(params)}"

    def complete_consent(self, code: str, redirect: Mapping[str, str] | None = None) -> ConsentResult:
        """Exchange an authorization code (it works once, for minutes), store the tokens as a new chain.

        :param code: the ``code`` of the redirect.
        :param redirect: every parameter of the redirect (QuickBooks puts ``realmId`` there).
        """
        params = dict(redirect or {})
        flow = self.token_flow("consent")
        grant = {"grant_type": "authorization_code", "code": code.strip(), "redirect_uri": self.oauth_app.redirect_uri}
        credential = flow.stamped(flow.exchange(grant))
        refresh_token = str(credential.get("refresh_token") or "")
        if not refresh_token or not credential.get("access_token"):
            raise ConsentError(
                f"{self.hook_name} answered the code exchange without a refresh token: ask for offline access "
                "(the consent helper's --scope) and authorize again"
            )
        key = self.chain_key_for(refresh_token, params)
        self.state.tokens.put(self.conn_type, key, credential)
        reached = self.reached_by(credential, key, params)
        return ConsentResult(
            system=self.conn_type,
            credential_key=key,
            extras={"refresh_token": refresh_token, **reached.extras},
            reached=reached.lines,
            notes=reached.notes,
        )
