"""Connect FreshBooks once, without writing code.

``python -m airflow_provider_mlconnector.hooks.freshbooks_consent [--conn-id freshbooks_default]
[--listen PORT] [--code CODE] [--scope "user:profile:read ..."] [--timeout 300]``

1. reads the Airflow connection (client id/secret, redirect URI, host) the hook will use;
2. prints the FreshBooks authorize URL (``https://auth.freshbooks.com/oauth/authorize``, or the
   connection host's ``/auth/oauth/authorize`` when the host is overridden, e.g. the sandbox);
3. takes the returned code: pasted (the code or the whole redirected URL), given with ``--code``,
   or caught by a one-shot listener on ``http://127.0.0.1:PORT`` (``--listen PORT``; the connection's
   redirect URI must reach it, e.g. through an HTTPS tunnel, since FreshBooks only redirects to HTTPS);
4. exchanges it (codes live 5 minutes and work once) and stores the tokens, encrypted, in the state
   store under the key the hook computes; then prints the businesses and the refresh token to put in
   the connection's ``refresh_token`` extra.
"""

from __future__ import annotations

import argparse
import html
import secrets
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs, urlsplit

from airflow_provider_mlconnector.exceptions import ConfigurationError, MLConnectorError
from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook

if TYPE_CHECKING:
    from airflow_provider_mlconnector.state import StateStore


class ConsentError(ConfigurationError):
    """The authorization did not complete (denied, wrong state, no code in time)."""


def code_from(answer: str, state: str) -> str:
    """The authorization code from what the user pasted: the code itself or the redirected URL.

    :param answer: the pasted text.
    :param state: the ``state`` sent with the authorize URL; a different one in the URL is refused.
    """
    text = answer.strip()
    if "code=" not in text and "error=" not in text:
        if not text:
            raise ConsentError("no authorization code was given")
        return text
    query = urlsplit(text).query if "?" in text else text
    params = {key: values[-1] for key, values in parse_qs(query).items()}
    return _checked(params, state)


def _checked(params: dict[str, str], state: str) -> str:
    if "error" in params:
        raise ConsentError(f"FreshBooks did not authorize the app: {params['error']}")
    if params.get("state") not in (None, state):
        raise ConsentError("the redirect carries another state than the one sent: start again (possible CSRF)")
    code = params.get("code", "").strip()
    if not code:
        raise ConsentError("the redirect carries no authorization code")
    return code


def listen_for_code(port: int, state: str, timeout: float, *, ready: Callable[[int], None] | None = None) -> str:
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
                outcome["code"] = _checked(params, state)
                status, text = 200, "FreshBooks authorization received. You can close this tab."
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
    if "code" not in outcome:
        raise ConsentError(f"no redirect reached http://127.0.0.1:{port} within {timeout:.0f}s")
    return str(outcome["code"])


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
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_mlconnector.hooks.freshbooks_consent",
        description="Authorize ml-connector on a FreshBooks account and store the tokens in the state store.",
    )
    parser.add_argument("--conn-id", default=FreshBooksHook.default_conn_name, help="Airflow connection id")
    parser.add_argument("--listen", type=int, metavar="PORT", help="catch the redirect on http://127.0.0.1:PORT")
    parser.add_argument("--code", help="an authorization code you already have")
    parser.add_argument("--scope", help="space-separated scopes (default: the app's registered scopes)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait with --listen")
    args = parser.parse_args(argv)

    try:
        hook = FreshBooksHook(args.conn_id, state_store=state_store)
        state = secrets.token_urlsafe(16)
        url = hook.authorize_url(state=state, scope=args.scope)
        out.write(f"1. Open this URL, sign in to FreshBooks and allow access:\n\n   {url}\n\n")
        out.write(f"   FreshBooks then redirects to {hook.config.redirect_uri}?code=...\n")
        if args.code:
            code = args.code.strip()
        elif args.listen is not None:

            def announce(port: int) -> None:
                out.write(f"2. Waiting for that redirect on http://127.0.0.1:{port} ...\n")
                out.flush()
                if ready is not None:
                    ready(port)

            code = listen_for_code(args.listen, state, args.timeout, ready=announce)
        else:
            out.flush()
            code = code_from(input_fn("2. Paste the code (or the whole URL you were sent to): "), state)
        result = hook.complete_consent(code)
    except MLConnectorError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1

    out.write(
        f"\nAuthorized. Tokens are stored encrypted in {hook.state.url} (freshbooks / {result.credential_key}).\n"
    )
    out.write("Businesses of this FreshBooks identity:\n")
    for business in result.businesses:
        out.write(f"  - {business.label()}\n")
    out.write(
        f"\n3. Set the extra field refresh_token of connection '{args.conn_id}' to the value below. The hook uses it\n"
        "   only to find this token chain; the live, rotating tokens stay in the state store.\n\n"
        f"   {result.refresh_token}\n"
    )
    if len([b for b in result.businesses if b.role != "client"]) > 1:
        out.write("\n   This identity has several businesses: also set business_id to one of the ids above.\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
