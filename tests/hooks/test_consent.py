"""The consent helper (``python -m airflow_provider_mlconnector.hooks.consent SYSTEM``) for the three
OAuth systems, against the sandbox's OAuth endpoints (authorize pages, code exchange)."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_mlconnector.exceptions import ConfigurationError
from airflow_provider_mlconnector.hooks import consent
from airflow_provider_mlconnector.hooks.bamboohr import BambooHRHook
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook, credential_key
from airflow_provider_mlconnector.hooks.oauth import ConsentError, OAuthHook
from airflow_provider_mlconnector.hooks.quickbooks import QuickBooksHook
from airflow_provider_mlconnector.sandbox import bamboohr, freshbooks, quickbooks

SANDBOX_SYSTEMS = [freshbooks.FreshBooksSandbox, quickbooks.QuickBooksSandbox, bamboohr.BambooHRSandbox]
CONN_ID = "consent_test"


@dataclass(frozen=True)
class System:
    name: str
    hook: type[OAuthHook]
    authorize_path: str  # the consent page below the sandbox system's base URL
    client_id: str
    redirect_uri: str

    def connection(self, sandbox) -> dict:
        emulator = sandbox.sandbox.systems[self.name]
        base = f"{sandbox.url}/{self.name}"
        conn = emulator.oauth_connection(base) if self.name == "bamboohr" else emulator.connection(base)
        conn["extra"].setdefault("redirect_uri", self.redirect_uri)
        return conn

    def probe(self, hook: OAuthHook) -> str:
        """One real call with the stored chain."""
        if isinstance(hook, FreshBooksHook):
            return hook.business.name
        if isinstance(hook, QuickBooksHook):
            return str(hook.get_company_info()["CompanyName"])
        assert isinstance(hook, BambooHRHook)
        return f"{len(hook.list_fields())} fields"


SYSTEMS = {
    "freshbooks": System(
        "freshbooks",
        FreshBooksHook,
        "/auth/oauth/authorize",
        freshbooks.SANDBOX_CLIENT_ID,
        freshbooks.SANDBOX_REDIRECT_URI,
    ),
    "quickbooks": System(
        "quickbooks",
        QuickBooksHook,
        "/connect/oauth2",
        quickbooks.SANDBOX_CLIENT_ID,
        quickbooks.SANDBOX_REDIRECT_URI,
    ),
    "bamboohr": System(
        "bamboohr",
        BambooHRHook,
        "/authorize.php",
        bamboohr.SANDBOX_OAUTH_CLIENT_ID,
        bamboohr.SANDBOX_OAUTH_REDIRECT_URI,
    ),
}
REACHED = {
    "freshbooks": "FreshBooks business Brightside Marketing (account_id BRT4201, business_id 439001, role owner)",
    "quickbooks": f"QuickBooks Online company 'Brightside Marketing' (realm {quickbooks.SANDBOX_REALM_ID}, sandbox)",
    "bamboohr": "BambooHR company 'brightside' (",
}


@pytest.fixture(autouse=True)
def _fresh(sandbox, reset_demo):
    reset_demo(rewind_clock=True)
    sandbox.control.clear_requests()


@pytest.fixture
def connect(sandbox, use_connection):
    """A connection to ``system`` as before consent (no refresh token); ``extra`` keywords override."""

    def _connect(system: str, **extra) -> dict:
        conn = SYSTEMS[system].connection(sandbox)
        conn["extra"] = {k: v for k, v in {**conn["extra"], "refresh_token": None, **extra}.items() if v is not None}
        return use_connection(CONN_ID, conn)

    return _connect


def approve(authorize_url: str) -> str:
    """What the user's browser does: allow access; returns where the vendor redirects (not followed).

    QuickBooks' and BambooHR's sandbox consent pages approve at once; FreshBooks' asks for a click.
    """
    shown = requests.get(authorize_url, allow_redirects=False, timeout=10)
    if shown.status_code == 302:
        return str(shown.headers["location"])
    parts = urlsplit(authorize_url)
    form = {k: v[-1] for k, v in parse_qs(parts.query).items()} | {"decision": "allow"}
    answer = requests.post(f"{parts.scheme}://{parts.netloc}{parts.path}", data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return str(answer.headers["location"])


def printed_url(out: io.StringIO) -> str:
    return next(line.strip() for line in out.getvalue().splitlines() if line.strip().startswith("http"))


def printed_extras(out: io.StringIO) -> dict[str, str]:
    lines = [line.strip() for line in out.getvalue().splitlines()]
    return dict(line.split(" = ", 1) for line in lines if " = " in line)


def token_calls(sandbox, system: str) -> int:
    return sum(n for route, n in sandbox.control.request_counts(system).items() if "token" in route.lower())


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_paste_flow_stores_a_chain_the_hook_then_uses_without_a_refresh(system, sandbox, connect, state_store):
    spec = SYSTEMS[system]
    conn = connect(system)
    out = io.StringIO()

    def paste(prompt: str) -> str:
        url = printed_url(out)
        assert url.startswith(f"{sandbox.url}/{system}{spec.authorize_path}?")  # the sandbox's consent page
        query = parse_qs(urlsplit(url).query)
        assert query["client_id"] == [spec.client_id] and query["redirect_uri"] == [spec.redirect_uri]
        return approve(url)  # the whole redirected URL, as the user pastes it

    assert consent.main([system, "--conn-id", CONN_ID], state_store=state_store, input_fn=paste, out=out) == 0
    printed = out.getvalue()
    assert REACHED[system] in printed
    extras = printed_extras(out)
    refresh_token = extras["refresh_token"]
    key = printed.split(f"({system} / ")[1].split(")")[0]
    assert state_store.tokens.get(system, key)["refresh_token"] == refresh_token

    # the user puts the printed extras in the connection: the hook finds the chain, no refresh
    connect(system, **{**conn["extra"], **extras})
    sandbox.control.clear_requests()
    assert SYSTEMS[system].probe(spec.hook(CONN_ID, state_store=state_store))
    assert token_calls(sandbox, system) == 0


def test_quickbooks_consent_captures_the_realm_from_the_redirect(sandbox, connect, state_store):
    connect("quickbooks", realm_id=None)  # a new connection does not know its company yet
    with pytest.raises(ConfigurationError, match="realm_id"):
        _ = QuickBooksHook(CONN_ID, state_store=state_store).config
    out = io.StringIO()
    code = consent.main(
        ["quickbooks", "--conn-id", CONN_ID],
        state_store=state_store,
        input_fn=lambda _p: approve(printed_url(out)),
        out=out,
    )
    assert code == 0, out.getvalue()
    assert printed_extras(out)["realm_id"] == quickbooks.SANDBOX_REALM_ID
    assert "scope=com.intuit.quickbooks.accounting" in printed_url(out)


def test_quickbooks_consent_without_a_realm_anywhere_asks_for_the_whole_url(sandbox, connect, state_store, capsys):
    connect("quickbooks", realm_id=None)
    hook = QuickBooksHook(CONN_ID, state_store=state_store)
    redirected = approve(hook.authorize_url(state="s1"))
    only_code = parse_qs(urlsplit(redirected).query)["code"][0]
    args = ["quickbooks", "--conn-id", CONN_ID, "--code", only_code]
    assert consent.main(args, state_store=state_store, out=io.StringIO()) == 1
    assert "paste the whole redirected URL" in capsys.readouterr().err


def test_listen_flow_catches_the_redirect_and_its_realm(sandbox, connect, state_store):
    connect("quickbooks", realm_id=None)
    out = io.StringIO()

    def browser(port: int) -> None:
        def run() -> None:
            redirected = urlsplit(approve(printed_url(out)))
            # the HTTPS redirect URI forwards to the local listener (a tunnel in real life)
            requests.get(f"http://127.0.0.1:{port}/callback?{redirected.query}", timeout=10)

        threading.Thread(target=run, daemon=True).start()

    args = ["quickbooks", "--conn-id", CONN_ID, "--listen", "0", "--timeout", "20"]
    assert consent.main(args, state_store=state_store, out=out, ready=browser) == 0, out.getvalue()
    assert "Waiting for that redirect on http://127.0.0.1:" in out.getvalue()
    assert printed_extras(out)["realm_id"] == quickbooks.SANDBOX_REALM_ID


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_a_foreign_state_and_a_reused_code_are_refused(system, sandbox, connect, state_store, capsys):
    connect(system)
    out = io.StringIO()
    redirected = {}

    def forged(prompt: str) -> str:
        redirected["url"] = approve(printed_url(out))
        return redirected["url"].replace("state=", "state=forged")

    assert consent.main([system, "--conn-id", CONN_ID], state_store=state_store, input_fn=forged, out=out) == 1
    assert "another state" in capsys.readouterr().err
    whole_url = redirected["url"]  # --code also takes the whole URL (the state in it is not ours: drop it)
    code = parse_qs(urlsplit(whole_url).query)["code"][0]
    realm = parse_qs(urlsplit(whole_url).query).get("realmId", [""])[0]
    given = f"code={code}&realmId={realm}" if realm else code
    args = [system, "--conn-id", CONN_ID, "--code", given]
    assert consent.main(args, state_store=state_store, out=io.StringIO()) == 0
    assert consent.main(args, state_store=state_store, out=io.StringIO()) == 1
    assert "re-authorize" in capsys.readouterr().err


def test_a_bamboohr_api_key_connection_is_told_how_to_switch_to_oauth(sandbox, use_connection, state_store, capsys):
    use_connection(CONN_ID, sandbox.sandbox.systems["bamboohr"].connection(f"{sandbox.url}/bamboohr"))
    assert consent.main(["bamboohr", "--conn-id", CONN_ID], state_store=state_store, out=io.StringIO()) == 1
    assert "auth_type to oauth" in capsys.readouterr().err


def test_authorize_urls_point_at_the_vendors_unless_the_host_is_overridden(state_store, monkeypatch):
    app = {"login": "cid", "password": "secret"}
    conns = {
        "freshbooks": {**app, "conn_type": "freshbooks", "extra": {"redirect_uri": "https://example.com/cb"}},
        "quickbooks": {**app, "conn_type": "quickbooks", "extra": {"redirect_uri": "https://example.com/cb"}},
        "bamboohr": {
            **app,
            "conn_type": "bamboohr",
            "extra": {"redirect_uri": "https://example.com/cb", "auth_type": "oauth", "company_domain": "acme"},
        },
    }
    for system, conn in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{system.upper()}_REAL", json.dumps(conn))
    query = "client_id=cid&response_type=code&redirect_uri=https%3A%2F%2Fexample.com%2Fcb&state=s1"
    fb = FreshBooksHook("freshbooks_real", state_store=state_store)
    assert fb.authorize_url(state="s1", scope="user:profile:read") == (
        f"https://auth.freshbooks.com/oauth/authorize?{query}&scope=user%3Aprofile%3Aread"
    )
    qbo = QuickBooksHook("quickbooks_real", state_store=state_store)
    assert qbo.authorize_url(state="s1") == (
        f"https://appcenter.intuit.com/connect/oauth2?{query}&scope=com.intuit.quickbooks.accounting"
    )
    bhr = BambooHRHook("bamboohr_real", state_store=state_store)
    assert bhr.authorize_url(state="s1") == f"https://acme.bamboohr.com/authorize.php?{query}"


def test_what_the_user_pastes_is_read_as_a_code_or_a_redirected_url():
    assert consent.redirect_from("https://example.com/cb?code=abc&state=s1&realmId=42", "s1") == {
        "code": "abc",
        "state": "s1",
        "realmId": "42",
    }
    assert consent.redirect_from("  abc  ", "s1") == {"code": "abc"}
    with pytest.raises(ConsentError, match="not authorized"):
        consent.redirect_from("https://example.com/cb?error=access_denied&state=s1", "s1")
    with pytest.raises(ConsentError, match="another state"):
        consent.redirect_from("https://example.com/cb?code=abc&state=s2", "s1")


def test_the_freshbooks_chain_key_is_what_the_hook_computes_from_the_printed_token(sandbox, connect, state_store):
    connect("freshbooks")
    out = io.StringIO()
    code = consent.main(
        ["freshbooks", "--conn-id", CONN_ID],
        state_store=state_store,
        input_fn=lambda _p: approve(printed_url(out)),
        out=out,
    )
    assert code == 0
    assert credential_key(freshbooks.SANDBOX_CLIENT_ID, printed_extras(out)["refresh_token"]) in out.getvalue()
