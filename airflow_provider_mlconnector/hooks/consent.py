"""Connect an OAuth system once, without writing code: FreshBooks, QuickBooks Online, BambooHR.

``python -m airflow_provider_mlconnector.hooks.consent SYSTEM [--conn-id ID] [--listen PORT]
[--code CODE_OR_URL] [--scope "..."] [--timeout 300]``

1. reads the Airflow connection (client id/secret, redirect URI, host) the hook will use, from
   ``AIRFLOW_CONN_*`` or, like ``airflow connections get``, from Admin > Connections;
2. prints the vendor's authorize URL (the connection host's consent page when ``host`` is
   overridden, e.g. the sandbox);
3. takes the redirect: pasted (the code or, better, the whole redirected URL: QuickBooks puts the
   company's ``realmId`` there), given with ``--code``, or caught by a one-shot listener on
   ``http://127.0.0.1:PORT`` (``--listen PORT``; the redirect URI must reach it, e.g. through an
   HTTPS tunnel, since the vendors redirect only to HTTPS);
4. exchanges the code (codes live minutes and work once), stores the tokens encrypted in the state
   store under the key the hook computes, shows what they reached, and prints the extras to put in
   the connection (``refresh_token``; QuickBooks also ``realm_id``).
"""

from __future__ import annotations

import argparse
import html
import importlib
import secrets
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs, urlsplit

from airflow_provider_mlconnector.exceptions import MLConnectorError
from airflow_provider_mlconnector.hooks.oauth import ConsentError, OAuthHook

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state import StateStore

#: The systems that grant access by OAuth consent, and their hooks.
HOOKS = {
    "freshbooks": "airflow_provider_mlconnector.hooks.freshbooks:FreshBooksHook",
    "quickbooks": "airflow_provider_mlconnector.hooks.quickbooks:QuickBooksHook",
    "bamboohr": "airflow_provider_mlconnector.hooks.bamboohr:BambooHRHook",
}

Redirect = dict[str, str]


def hook_class(system: str) -> type[OAuthHook]:
    module, _, name = HOOKS[system].partition(":")
    found: type[OAuthHook] = getattr(importlib.import_module(module), name)
    return found


def redirect_from(answer: str, state: str) -> Redirect:
    """The redirect's parameters (``code``, and ``realmId`` for QuickBooks) from what the user pasted:
    the code itself or the whole redirected URL.

    :param answer: the pasted text.
    :param state: the ``state`` sent with the authorize URL; a different one in the URL is refused.
    """
    text = answer.strip()
    if "code=" not in text and "error=" not in text:
        if not text:
            raise ConsentError("no authorization code was given")
        return {"code": text}
    query = urlsplit(text).query if "?" in text else text
    return _checked({key: values[-1] for key, values in parse_qs(query).items()}, state)


def _checked(params: Redirect, state: str) -> Redirect:
    if "error" in params:
        raise ConsentError(f"the app was not authorized: {params['error']}")
    if params.get("state") not in (None, state):
        raise ConsentError("the redirect carries another state than the one sent: start again (possible CSRF)")
    if not params.get("code", "").strip():
        raise ConsentError("the redirect carries no authorization code")
    return params


def listen_for_redirect(
    port: int, state: str, timeout: float, *, ready: Callable[[int], None] | None = None
) -> Redirect:
    """Serve ``http://127.0.0.1:port`` until one redirect with a code (or an error) arrives.

    :param port: local port (0 picks a free one, reported through ``ready``).
    :param state: the expected ``state``.
    :param timeout: give up after this many seconds.
    :param ready: called with the bound port once listening.
    """
    outcome: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            params = {key: values[-1] for key, values in parse_qs(urlsplit(self.path).query).items()}
            if not params:  # favicon and friends
                self.send_response(404)
                self.end_headers()
                return
            try:
                outcome["redirect"] = _checked(params, state)
                status, text = 200, "Authorization received. You can close this tab."
            except ConsentError as exc:
                outcome["error"] = exc
                status, text = 400, str(exc)
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(f"<!doctype html><p>{html.escape(text)}</p>".encode())

        def log_message(self, format: str, *args: Any) -> None:
            return  # the query string carries the code: keep it out of the terminal

    server = HTTPServer(("127.0.0.1", port), Handler)
    server.timeout = 0.5
    deadline = time.monotonic() + timeout
    try:
        if ready is not None:
            ready(server.server_address[1])
        while not outcome and time.monotonic() < deadline:
            server.handle_request()
    finally:
        server.server_close()
    if "error" in outcome:
        raise outcome["error"]
    if "redirect" not in outcome:
        raise ConsentError(f"no redirect reached http://127.0.0.1:{port} within {timeout:.0f}s")
    redirect: Redirect = outcome["redirect"]
    return redirect


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_mlconnector.hooks.consent",
        description="Authorize ml-connector on an OAuth system and store the tokens in the state store.",
    )
    parser.add_argument("system", choices=sorted(HOOKS), help="which system to connect")
    parser.add_argument("--conn-id", help="Airflow connection id (default: <system>_default)")
    parser.add_argument("--listen", type=int, metavar="PORT", help="catch the redirect on http://127.0.0.1:PORT")
    parser.add_argument("--code", help="an authorization code, or the whole redirected URL, you already have")
    parser.add_argument("--scope", help="space-separated scopes (default: the system's usual ones)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait with --listen")
    return parser


def main(
    argv: list[str] | None = None,
    *,
    state_store: StateStore | None = None,
    input_fn: Callable[[str], str] = input,
    out: TextIO | None = None,
    ready: Callable[[int], None] | None = None,
) -> int:
    """Run the consent flow; returns the process exit code."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    cls = hook_class(args.system)
    conn_id = args.conn_id or cls.default_conn_name
    try:
        hook = cls(conn_id, state_store=state_store)
        state = secrets.token_urlsafe(16)
        url = hook.authorize_url(state=state, scope=args.scope)
        out.write(f"1. Open this URL, sign in to {hook.hook_name} and allow access:\n\n   {url}\n\n")
        out.write(f"   {hook.hook_name} then redirects to {hook.oauth_app.redirect_uri}?code=...\n")
        if args.code:
            redirect = redirect_from(args.code, state)
        elif args.listen is not None:

            def announce(port: int) -> None:
                out.write(f"2. Waiting for that redirect on http://127.0.0.1:{port} ...\n")
                out.flush()
                if ready is not None:
                    ready(port)

            redirect = listen_for_redirect(args.listen, state, args.timeout, ready=announce)
        else:
            out.flush()
            redirect = redirect_from(input_fn("2. Paste the whole URL you were sent to (or the code): "), state)
        result = hook.complete_consent(redirect["code"], redirect)
    except MLConnectorError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1

    out.write(
        f"\nAuthorized. Tokens are stored encrypted in {hook.state.url} ({result.system} / {result.credential_key}).\n"
    )
    out.write("Reached:\n")
    for line in result.reached:
        out.write(f"  - {line}\n")
    out.write(
        f"\n3. Set these extra fields of connection '{conn_id}' (Admin > Connections, then Test). The hook uses\n"
        "   refresh_token only to find this token chain; the live, rotating tokens stay in the state store.\n\n"
    )
    for name, value in result.extras.items():
        out.write(f"   {name} = {value}\n")
    for note in result.notes:
        out.write(f"\n   {note}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
