"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point.

Connection forms are declared with ``conn-fields`` (JSON Schema; Airflow >= 3.2) and
``ui-field-behaviour``. Secrets carry ``format: password`` so the UI and the masker treat them as
sensitive. ``package-name`` must equal the distribution name or ``airflow providers list`` fails.
"""

from __future__ import annotations

from typing import Any

_HOOKS = "airflow_provider_mlconnector.hooks"


def _text(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"], **schema}}


def _secret(label: str, description: str) -> dict[str, Any]:
    return _text(label, description, format="password")


_TOKEN_URL = _text("Token URL override", "Only when the OAuth token endpoint lives elsewhere than the API host.")


def _connection_type(
    conn_type: str,
    hook_class: str,
    hook_name: str,
    *,
    relabel: dict[str, str],
    hidden: list[str],
    placeholders: dict[str, str],
    fields: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    return {
        "connection-type": conn_type,
        "hook-class-name": f"{_HOOKS}.{conn_type}.{hook_class}",
        "hook-name": hook_name,
        "ui-field-behaviour": {
            "hidden-fields": hidden,
            "relabeling": {"host": "API host override", **relabel},
            "placeholders": placeholders,
        },
        "conn-fields": fields,
    }


CONNECTION_TYPES: list[dict[str, Any]] = [
    _connection_type(
        "freshbooks",
        "FreshBooksHook",
        "FreshBooks",
        relabel={"login": "OAuth client id", "password": "OAuth client secret"},
        hidden=["schema", "port"],
        placeholders={"host": "https://api.freshbooks.com", "login": "your app's client id"},
        fields={
            "refresh_token": _secret(
                "Initial refresh token",
                "From the consent helper. Used once; rotated tokens then live encrypted in the state store.",
            ),
            "redirect_uri": _text("Redirect URI", "The HTTPS redirect URI registered for your FreshBooks app."),
            "account_id": _text("Account id", "Optional; discovered from users/me when empty."),
            "business_id": _text("Business id", "Required only when the identity belongs to several businesses."),
        },
    ),
    _connection_type(
        "bill",
        "BillHook",
        "BILL",
        relabel={"login": "Username (email)", "password": "Password"},
        hidden=["schema", "port"],
        placeholders={"host": "https://gateway.prod.bill.com", "login": "ap@example.com"},
        fields={
            "dev_key": _secret("Developer key", "BILL developer key for this environment (sandbox keys differ)."),
            "organization_id": _text("Organization id", "BILL organization id (starts with 008).", pattern="^008"),
            "webhook_security_key": _secret(
                "Webhook security key", "Only for a subscription created by hand (the CLI stores its own)."
            ),
        },
    ),
    _connection_type(
        "bigcommerce",
        "BigCommerceHook",
        "BigCommerce",
        relabel={"password": "Access token (X-Auth-Token)"},
        hidden=["schema", "port", "login"],
        placeholders={"host": "https://api.bigcommerce.com"},
        fields={
            "store_hash": _text("Store hash", "The store hash from the API path (stores/{store_hash}/v3)."),
            "client_id": _text("Client id", "Optional: the API account's client id."),
            "client_secret": _secret("Client secret", "Optional: verifies signed webhooks."),
        },
    ),
    _connection_type(
        "expensify",
        "ExpensifyHook",
        "Expensify",
        relabel={"login": "partnerUserID", "password": "partnerUserSecret"},
        hidden=["schema", "port"],
        placeholders={"host": "https://integrations.expensify.com"},
        fields={
            "policy_id": _text("Policy id", "Workspace (policy) id whose reports and categories are synced."),
            "test_report_prefix": _text(
                "Test report prefix",
                "When set, only reports whose name starts with this prefix are read (safe trial on production).",
            ),
        },
    ),
    _connection_type(
        "bamboohr",
        "BambooHRHook",
        "BambooHR",
        relabel={"login": "OAuth client id (OAuth mode)", "password": "API key (or OAuth client secret)"},
        hidden=["schema", "port"],
        placeholders={"host": "https://api.bamboohr.com", "login": "empty in API-key mode"},
        fields={
            "company_domain": _text("Company domain", "The company subdomain: <company>.bamboohr.com."),
            "auth_type": {
                "label": "Auth type",
                "description": "api_key (basic auth with the key) or oauth.",
                "schema": {"type": ["string", "null"], "enum": ["api_key", "oauth", None], "default": "api_key"},
            },
            "refresh_token": _secret("Initial refresh token", "OAuth mode only; from the consent helper."),
            "redirect_uri": _text("Redirect URI", "OAuth mode only: the HTTPS redirect URI registered for the app."),
            "token_url": _TOKEN_URL,
            "webhook_private_key": _secret(
                "Webhook private key", "Only for a webhook created by hand (the CLI stores its own)."
            ),
        },
    ),
    _connection_type(
        "quickbooks",
        "QuickBooksHook",
        "QuickBooks Online",
        relabel={"login": "OAuth client id", "password": "OAuth client secret"},
        hidden=["schema", "port"],
        placeholders={"host": "https://quickbooks.api.intuit.com"},
        fields={
            "realm_id": _text("Realm id", "The QuickBooks company id (realmId); the consent helper prints it."),
            "refresh_token": _secret(
                "Initial refresh token",
                "From the consent helper. Rotated tokens then live encrypted in the state store.",
            ),
            "redirect_uri": _text("Redirect URI", "The HTTPS redirect URI registered for your Intuit app."),
            "environment": {
                "label": "Environment",
                "description": "sandbox or production.",
                "schema": {
                    "type": ["string", "null"],
                    "enum": ["sandbox", "production", None],
                    "default": "production",
                },
            },
            "token_url": _TOKEN_URL,
            "webhook_verifier_token": _secret("Webhook verifier token", "From Intuit's developer portal."),
        },
    ),
]


def get_provider_info() -> dict[str, Any]:
    """Return the provider info dict Airflow validates against ``provider_info.schema.json``."""
    from airflow_provider_mlconnector import __version__

    return {
        "package-name": "airflow-provider-mlconnector",
        "name": "ml-connector",
        "description": "Keeps FreshBooks, BILL, BigCommerce, Expensify, BambooHR and QuickBooks Online in sync.",
        "versions": [__version__],
        "connection-types": CONNECTION_TYPES,
    }
