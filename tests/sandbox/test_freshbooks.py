"""The FreshBooks emulator's behaviours, over real HTTP."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
import requests

from airflow_provider_mlconnector.sandbox.freshbooks import (
    BRIGHTSIDE_ACCOUNT_ID,
    BRIGHTSIDE_BUSINESS_ID,
    BRIGHTSIDE_BUSINESS_UUID,
    HARBOR_ACCOUNT_ID,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_MULTI_REFRESH_TOKEN,
    SANDBOX_REDIRECT_URI,
    SANDBOX_REFRESH_TOKEN,
    FreshBooksSandbox,
    webhook_signature,
)
from airflow_provider_mlconnector.sandbox.freshbooks.backend import EASTERN

ACCOUNT = f"/accounting/account/{BRIGHTSIDE_ACCOUNT_ID}"
BILLS = f"{ACCOUNT}/bills/bills"
PAYMENTS = f"{ACCOUNT}/bill_payments/bill_payments"
CALLBACKS = f"/events/account/{BRIGHTSIDE_ACCOUNT_ID}/events/callbacks"


SANDBOX_SYSTEMS = [FreshBooksSandbox]


@pytest.fixture(autouse=True)
def _fresh(sandbox, reset_demo):
    reset_demo()  # reset() also restores the default switches and rewinds the clock
    # outbound deliveries are kept across resets: remember where this test starts
    sandbox.sandbox.ctx.webhooks.wait_idle()
    sandbox.first_delivery = len(sandbox.control.webhooks())


class FB:
    """A tiny raw client: the tests speak HTTP to the emulator exactly as a client would."""

    def __init__(self, sandbox, refresh_token: str = SANDBOX_REFRESH_TOKEN) -> None:
        self.base = f"{sandbox.url}/freshbooks"
        self.tokens = refresh(self.base, refresh_token).json()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    def get(self, path, **params):
        return requests.get(self.base + path, headers=self.headers, params=params, timeout=10)

    def post(self, path, body):
        return requests.post(self.base + path, headers=self.headers, json=body, timeout=10)

    def put(self, path, body):
        return requests.put(self.base + path, headers=self.headers, json=body, timeout=10)

    def delete(self, path):
        return requests.delete(self.base + path, headers=self.headers, timeout=10)


def refresh(base: str, refresh_token: str, encoding: str = "form"):
    form = {
        "grant_type": "refresh_token",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
        "redirect_uri": SANDBOX_REDIRECT_URI,
        "refresh_token": refresh_token,
    }
    url = f"{base}/auth/oauth/token"
    if encoding == "json":
        return requests.post(url, json=form, timeout=10)
    if encoding == "multipart":
        return requests.post(url, files={k: (None, v) for k, v in form.items()}, timeout=10)
    return requests.post(url, data=form, timeout=10)


def result(response, key):
    assert response.status_code == 200, response.text
    return response.json()["response"]["result"][key]


def errors(response):
    return response.json()["response"]["errors"]


@pytest.fixture
def fb(sandbox):
    return FB(sandbox)


# ------------------------------------------------------------------ OAuth


def test_refresh_grant_accepts_form_json_and_multipart_and_rotates(sandbox):
    base = f"{sandbox.url}/freshbooks"
    token = SANDBOX_REFRESH_TOKEN
    for encoding in ("form", "json", "multipart"):
        answer = refresh(base, token, encoding)
        assert answer.status_code == 200, (encoding, answer.text)
        body = answer.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 43200
        assert isinstance(body["created_at"], int)
        assert body["refresh_token"] != token
        token = body["refresh_token"]


def test_reused_refresh_token_is_rejected_with_invalid_grant(sandbox):
    base = f"{sandbox.url}/freshbooks"
    assert refresh(base, SANDBOX_REFRESH_TOKEN).status_code == 200
    again = refresh(base, SANDBOX_REFRESH_TOKEN)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert sandbox.control.state("freshbooks")["oauth"]["reused_refresh"] == 1
    sandbox.control.switch("freshbooks", "refresh_reuse_status", 401)
    assert refresh(base, SANDBOX_REFRESH_TOKEN).status_code == 401


def test_wrong_client_secret_is_invalid_client(sandbox):
    answer = requests.post(
        f"{sandbox.url}/freshbooks/auth/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": "nope",
            "refresh_token": "x",
        },
        timeout=10,
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


def test_access_token_expires_and_refresh_revokes_the_previous_one(sandbox, fb):
    assert fb.get(BILLS).status_code == 200
    sandbox.control.advance_clock(43201)
    expired = fb.get(BILLS)
    assert expired.status_code == 401
    assert errors(expired)[0]["errno"] == 1003  # accounting-shaped 401 (a guess, see README)
    old = fb.tokens["access_token"]
    fb.tokens = refresh(fb.base, fb.tokens["refresh_token"]).json()
    assert fb.get(BILLS).status_code == 200
    # the access token issued before the refresh is dead as well
    stale = requests.get(fb.base + BILLS, headers={"Authorization": f"Bearer {old}"}, timeout=10)
    assert stale.status_code == 401


def test_expires_in_switch_and_expired_auth_fault(sandbox, fb):
    sandbox.control.switch("freshbooks", "expires_in", 60)
    short = FB(sandbox, SANDBOX_MULTI_REFRESH_TOKEN)
    assert short.tokens["expires_in"] == 60
    sandbox.control.advance_clock(61)
    assert short.get("/auth/api/v1/users/me").status_code == 401
    sandbox.control.fault("freshbooks", "expired_auth")
    assert fb.get(BILLS).status_code == 401


def _authorize(sandbox, redirect_uri=SANDBOX_REDIRECT_URI, state="st4te", identity_id=None):
    params = {
        "client_id": SANDBOX_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "state": state,
    }
    form = dict(params, decision="allow")
    if identity_id:
        form["identity_id"] = str(identity_id)
    return requests.post(f"{sandbox.url}/freshbooks/auth/oauth/authorize", data=form, allow_redirects=False, timeout=10)


def _exchange(sandbox, code, redirect_uri=SANDBOX_REDIRECT_URI):
    return requests.post(
        f"{sandbox.url}/freshbooks/auth/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "redirect_uri": redirect_uri,
            "code": code,
        },
        timeout=10,
    )


def test_authorize_page_redirects_with_a_single_use_code(sandbox):
    page = requests.get(
        f"{sandbox.url}/freshbooks/auth/oauth/authorize",
        params={"client_id": SANDBOX_CLIENT_ID, "response_type": "code", "redirect_uri": SANDBOX_REDIRECT_URI},
        timeout=10,
    )
    assert page.status_code == 200
    assert "<form" in page.text
    redirect = _authorize(sandbox)
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == SANDBOX_REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["st4te"]
    code = query["code"][0]
    tokens = _exchange(sandbox, code)
    assert tokens.status_code == 200
    assert {"access_token", "refresh_token", "expires_in", "created_at"} <= tokens.json().keys()
    reuse = _exchange(sandbox, code)
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"


def test_authorization_codes_expire_after_five_minutes_and_bind_the_redirect_uri(sandbox):
    code = parse_qs(urlsplit(_authorize(sandbox).headers["location"]).query)["code"][0]
    assert _exchange(sandbox, code, redirect_uri="https://elsewhere.example/cb").json()["error"] == "invalid_grant"
    late = parse_qs(urlsplit(_authorize(sandbox).headers["location"]).query)["code"][0]
    sandbox.control.advance_clock(301)
    assert _exchange(sandbox, late).status_code == 400


def test_authorize_refuses_an_unregistered_redirect_uri_without_redirecting(sandbox):
    answer = _authorize(sandbox, redirect_uri="https://attacker.example/cb")
    assert answer.status_code == 400
    assert "location" not in answer.headers
    sandbox.control.switch("freshbooks", "extra_redirect_uris", ["https://tunnel.example/cb"])
    assert _authorize(sandbox, redirect_uri="https://tunnel.example/cb").status_code == 302


# ------------------------------------------------------------------ identity and scoping


def test_users_me_lists_the_business_memberships(fb):
    me = fb.get("/auth/api/v1/users/me").json()["response"]
    assert [m["business"]["account_id"] for m in me["business_memberships"]] == [BRIGHTSIDE_ACCOUNT_ID]
    business = me["business_memberships"][0]["business"]
    assert business["id"] == BRIGHTSIDE_BUSINESS_ID
    assert business["business_uuid"] == BRIGHTSIDE_BUSINESS_UUID
    assert business["name"] == "Brightside Marketing"


def test_users_me_unauthenticated_shape_and_status_switch(sandbox):
    url = f"{sandbox.url}/freshbooks/auth/api/v1/users/me"
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 401
    assert answer.json() == {
        "error": "unauthenticated",
        "error_description": "This action requires authentication to continue.",
    }
    sandbox.control.switch("freshbooks", "users_me_unauthenticated_status", 403)
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 403


def test_tokens_only_open_their_own_accounts(sandbox, fb):
    denied = fb.get(f"/accounting/account/{HARBOR_ACCOUNT_ID}/bills/bills")
    assert denied.status_code == 403
    assert errors(denied)[0]["errno"] == 1003
    other = FB(sandbox, SANDBOX_MULTI_REFRESH_TOKEN)
    me = other.get("/auth/api/v1/users/me").json()["response"]
    assert len(me["business_memberships"]) == 2
    vendors = result(other.get(f"/accounting/account/{HARBOR_ACCOUNT_ID}/bill_vendors/bill_vendors"), "bill_vendors")
    assert [v["vendor_name"] for v in vendors] == ["Lakeshore Print Shop"]
    assert other.get(BILLS).status_code == 200


# ------------------------------------------------------------------ envelopes, paging, errors


def test_list_envelope_defaults_and_paging_rules(sandbox, fb):
    sandbox.control.generate({"freshbooks": {"bills": 242}})  # 250 bills in all
    first = fb.get(BILLS).json()["response"]["result"]
    assert (first["page"], first["per_page"], first["total"], first["pages"]) == (1, 15, 250, 17)
    capped = fb.get(BILLS, per_page=500).json()["response"]["result"]
    assert capped["per_page"] == 100
    assert len(capped["bills"]) == 100
    assert capped["pages"] == 3
    beyond = fb.get(BILLS, per_page=100, page=4).json()["response"]["result"]
    assert beyond["bills"] == []
    assert beyond["pages"] == 3
    assert fb.get(BILLS, page=0).json()["response"]["result"]["page"] == 1
    bad_page = fb.get(BILLS, page=-1)
    assert bad_page.status_code == 400
    assert errors(bad_page)[0]["errno"] == 1014
    assert errors(fb.get(BILLS, per_page="x"))[0]["errno"] == 1013
    seen = set()
    for page in (1, 2, 3):
        seen.update(b["id"] for b in fb.get(BILLS, per_page=100, page=page).json()["response"]["result"]["bills"])
    assert len(seen) == 250


def test_single_record_and_not_found_error_shape(fb):
    bill = result(fb.get(f"{BILLS}/7103"), "bill")
    assert bill["bill_number"] == "ADB-2026-10"
    missing = fb.get(f"{BILLS}/999999")
    assert missing.status_code == 404
    entry = errors(missing)[0]
    assert entry["errno"] == 1012
    assert entry["object"] == "bill"


def test_bill_money_dates_and_lines_are_vendor_shaped(sandbox, fb):
    issued = sandbox.sandbox.ctx.clock.now_dt().astimezone(EASTERN).date()  # due in 39 days: unpaid, not overdue
    created = result(
        fb.post(
            BILLS,
            {
                "bill": {
                    "vendorid": "5104",
                    "bill_number": "GADS-5530",
                    "issue_date": issued.isoformat(),
                    "due_offset_days": 39,
                    "currency_code": "USD",
                    "language": "en",
                    "lines": [
                        {
                            "categoryid": "3003",
                            "description": "Search ads",
                            "quantity": 3,
                            "unit_cost": {"amount": "125", "code": "USD"},
                        },
                        {
                            "categoryid": 3004,
                            "description": "Cables",
                            "quantity": "1.5",
                            "unit_cost": {"amount": "10.01", "code": "USD"},
                        },
                    ],
                }
            },
        ),
        "bill",
    )
    assert created["due_date"] == (issued + timedelta(days=39)).isoformat()
    assert created["amount"] == {"amount": "390.02", "code": "USD"}  # 375.00 + 15.015 rounded half up
    assert created["total_amount"] == {"amount": "390.02", "code": "USD"}
    assert created["status"] == "unpaid"
    first, second = created["lines"]
    assert first["quantity"] == "3"
    assert first["unit_cost"] == {"amount": "125.00", "code": "USD"}
    assert first["category"]["categoryid"] == 3003
    assert "categoryid" not in first
    assert second["quantity"] == "1.5"
    assert len(created["updated_at"]) == len("2026-11-21 12:00:00")


def test_line_category_shape_switch(sandbox, fb):
    sandbox.control.switch("freshbooks", "line_category_shape", "flat")
    line = result(fb.get(f"{BILLS}/7105"), "bill")["lines"][0]
    assert line["category"] == "Advertising"
    assert line["categoryid"] == 3003


def test_bill_validation_errors(fb):
    missing_lines = fb.post(
        BILLS,
        {
            "bill": {
                "vendorid": 5101,
                "issue_date": "2026-11-01",
                "due_offset_days": 30,
                "currency_code": "USD",
                "language": "en",
            }
        },
    )
    assert missing_lines.status_code == 422
    assert errors(missing_lines)[0] | {"errno": 1001, "field": "lines"} == errors(missing_lines)[0]
    unknown_category = fb.post(
        BILLS,
        {
            "bill": {
                "vendorid": 5101,
                "issue_date": "2026-11-01",
                "due_offset_days": 30,
                "currency_code": "USD",
                "language": "en",
                "lines": [{"categoryid": 999, "unit_cost": {"amount": "1", "code": "USD"}}],
            }
        },
    )
    assert unknown_category.status_code == 422
    assert errors(unknown_category)[0]["errno"] == 1012
    assert fb.post(BILLS, {"not_a_bill": {}}).status_code == 422
    garbage = requests.post(
        fb.base + BILLS, headers={**fb.headers, "Content-Type": "application/json"}, data="{", timeout=10
    )
    assert garbage.status_code == 400
    assert errors(garbage)[0]["errno"] == 1005


def test_bill_search_filters_and_include_vendor(fb):
    def numbers(**params):
        return sorted(b["bill_number"] for b in result(fb.get(BILLS, **params), "bills"))

    assert numbers(**{"search[vendorid]": 5102}) == ["ADB-2026-10", "ADB-2026-11"]
    assert numbers(**{"search[ids][]": [7105, 7107]}) == ["META-88213", "NCC-778"]
    assert numbers(**{"search[currency_code]": "CAD"}) == []
    overdue = numbers(**{"search[statuses][]": "overdue"})
    assert "PFS-1041" in overdue  # due 2026-11-04
    # an undocumented filter is ignored, not applied
    assert len(numbers(**{"search[bill_number]": "PFS-1041"})) == 8
    with_vendor = result(fb.get(BILLS, **{"include[]": "vendor", "search[ids][]": 7105}), "bills")[0]
    assert with_vendor["vendor"]["vendor_name"] == "Meta Platforms Ireland Ltd"
    assert "vendor" not in result(fb.get(f"{BILLS}/7105"), "bill")


def test_updated_min_is_ignored_unless_switched_on(sandbox, fb):
    sandbox.control.advance_clock(3 * 86400)
    fb.tokens = refresh(fb.base, fb.tokens["refresh_token"]).json()
    result(fb.put(f"{BILLS}/7106", {"bill": {"bill_number": "GADS-5521-A"}}), "bill")
    later = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400))
    assert len(result(fb.get(BILLS, **{"search[updated_min]": later}), "bills")) == 8
    sandbox.control.switch("freshbooks", "honour_updated_min", True)
    assert [b["bill_number"] for b in result(fb.get(BILLS, **{"search[updated_min]": later}), "bills")] == [
        "GADS-5521-A"
    ]


# ------------------------------------------------------------------ vis_state


def test_archived_listed_deleted_hidden_and_searchable(fb):
    listed = {b["bill_number"]: b["vis_state"] for b in result(fb.get(BILLS), "bills")}
    assert listed["PFS-1039"] == 2
    deleted = result(fb.put(f"{BILLS}/7107", {"bill": {"vis_state": 1}}), "bill")
    assert deleted["vis_state"] == 1
    assert "NCC-778" not in {b["bill_number"] for b in result(fb.get(BILLS), "bills")}
    assert [b["bill_number"] for b in result(fb.get(BILLS, **{"search[vis_state]": 1}), "bills")] == ["NCC-778"]
    assert result(fb.get(f"{BILLS}/7107"), "bill")["vis_state"] == 1
    edit_deleted = fb.put(f"{BILLS}/7107", {"bill": {"bill_number": "NCC-779"}})
    assert edit_deleted.status_code == 422
    assert errors(edit_deleted)[0]["errno"] == 1011
    restored = result(fb.put(f"{BILLS}/7107", {"bill": {"vis_state": 0}}), "bill")
    assert restored["vis_state"] == 0


def test_put_with_vis_state_silently_drops_the_other_fields(fb):
    answer = fb.put(f"{BILLS}/7102", {"bill": {"vis_state": 0, "bill_number": "CHANGED", "due_offset_days": 5}})
    assert answer.status_code == 200
    bill = result(fb.get(f"{BILLS}/7102"), "bill")
    assert bill["bill_number"] == "PFS-1042"
    assert bill["due_offset_days"] == 30
    normal = result(fb.put(f"{BILLS}/7102", {"bill": {"bill_number": "CHANGED"}}), "bill")
    assert normal["bill_number"] == "CHANGED"


# ------------------------------------------------------------------ bill payments


def _pay(fb, amount, bill_id=7101, **extra):
    body = {"billid": bill_id, "amount": {"amount": amount, "code": "USD"}, "paid_date": "2026-11-20"}
    body.update({"payment_type": "Bank Transfer", **extra})
    return fb.post(PAYMENTS, {"bill_payment": body})


def test_bill_status_paid_and_outstanding_follow_the_payments(fb):
    first = result(_pay(fb, "1000"), "bill_payment")
    assert first["amount"] == {"amount": "1000.00", "code": "USD"}
    bill = result(fb.get(f"{BILLS}/7101"), "bill")
    assert bill["status"] == "partial"
    assert bill["paid"]["amount"] == "1000.00"
    assert bill["outstanding"]["amount"] == "1750.00"
    assert [p["id"] for p in bill["bill_payments"]] == [first["id"]]
    second = result(_pay(fb, "1750.00"), "bill_payment")
    bill = result(fb.get(f"{BILLS}/7101"), "bill")
    assert (bill["status"], bill["outstanding"]["amount"]) == ("paid", "0.00")
    over = _pay(fb, "0.01")
    assert over.status_code == 422
    assert errors(over)[0]["errno"] == 1004
    result(fb.put(f"{PAYMENTS}/{second['id']}", {"bill_payment": {"vis_state": 1}}), "bill_payment")
    bill = result(fb.get(f"{BILLS}/7101"), "bill")
    assert bill["status"] == "partial"
    assert len(bill["bill_payments"]) == 1
    result(
        fb.put(f"{PAYMENTS}/{first['id']}", {"bill_payment": {"amount": {"amount": "2750.00", "code": "USD"}}}),
        "bill_payment",
    )
    assert result(fb.get(f"{BILLS}/7101"), "bill")["status"] == "paid"
    vendor = result(fb.get(f"{ACCOUNT}/bill_vendors/bill_vendors/5101"), "bill_vendor")
    # PFS-1042 (1875.50) and the archived, still unpaid PFS-1039 (990.00)
    assert vendor["outstanding_balance"] == [{"amount": "2865.50", "code": "USD"}]


def test_bill_payment_validation(fb):
    assert errors(_pay(fb, "10", payment_type="Barter"))[0]["field"] == "payment_type"
    assert errors(_pay(fb, "10", bill_id=424242))[0]["errno"] == 1012
    no_date = fb.post(
        PAYMENTS, {"bill_payment": {"billid": 7101, "amount": {"amount": "1", "code": "USD"}, "payment_type": "Cash"}}
    )
    assert errors(no_date)[0] | {"errno": 1001, "field": "paid_date"} == errors(no_date)[0]
    wrong_currency = fb.post(
        PAYMENTS,
        {
            "bill_payment": {
                "billid": 7101,
                "amount": {"amount": "1", "code": "EUR"},
                "paid_date": "2026-11-20",
                "payment_type": "Cash",
            }
        },
    )
    assert errors(wrong_currency)[0]["errno"] == 1004


# ------------------------------------------------------------------ other resources


def test_invoices_are_created_as_draft_and_marked_sent(fb):
    invoice = result(
        fb.post(
            f"{ACCOUNT}/invoices/invoices",
            {
                "invoice": {
                    "customerid": 88002,
                    "create_date": "2026-11-20",
                    "lines": [{"name": "Workshop", "qty": 1, "unit_cost": {"amount": "1800", "code": "USD"}}],
                    "action_mark_as_sent": True,  # ignored on create: invoices start as drafts
                }
            },
        ),
        "invoice",
    )
    assert (invoice["status"], invoice["v3_status"], invoice["invoice_number"]) == (1, "draft", "0000108")
    sent = result(
        fb.put(f"{ACCOUNT}/invoices/invoices/{invoice['id']}", {"invoice": {"action_mark_as_sent": True}}), "invoice"
    )
    assert (sent["status"], sent["v3_status"]) == (2, "sent")
    payment = fb.post(
        f"{ACCOUNT}/payments/payments",
        {
            "payment": {
                "invoiceid": invoice["id"],
                "amount": {"amount": "800", "code": "USD"},
                "date": "2026-11-21",
                "type": "Check",
            }
        },
    )
    assert result(payment, "payment")["amount"]["amount"] == "800.00"
    assert result(fb.get(f"{ACCOUNT}/invoices/invoices/{invoice['id']}"), "invoice")["status"] == 8
    deleted = result(fb.delete(f"{ACCOUNT}/invoices/invoices/{invoice['id']}"), "invoice")
    assert deleted["vis_state"] == 1


def _invoice(fb, number, lines=None):
    body = {"customerid": 88002, "create_date": "2026-11-20", "invoice_number": number}
    body["lines"] = lines or [{"name": "Workshop", "qty": 1, "unit_cost": {"amount": "10", "code": "USD"}}]
    return fb.post(f"{ACCOUNT}/invoices/invoices", {"invoice": body})


def test_an_invoice_number_is_never_used_twice_not_even_after_a_delete(sandbox, fb):
    first = result(_invoice(fb, "SO-100"), "invoice")
    fb.delete(f"{ACCOUNT}/invoices/invoices/{first['id']}")
    again = _invoice(fb, "SO-100")
    assert again.status_code == 422 and errors(again)[0]["field"] == "invoice_number"
    deleted = result(
        fb.get(f"{ACCOUNT}/invoices/invoices", **{"search[invoice_number]": "SO-100", "search[vis_state]": 1}),
        "invoices",
    )
    assert [i["id"] for i in deleted] == [first["id"]]
    sandbox.control.switch("freshbooks", "unique_invoice_numbers", False)
    assert _invoice(fb, "SO-100").status_code == 200


def test_negative_invoice_lines_are_accepted_unless_switched_off(sandbox, fb):
    lines = [
        {"name": "Tent", "qty": 1, "unit_cost": {"amount": "100", "code": "USD"}},
        {"name": "Refund 7", "qty": 1, "unit_cost": {"amount": "-40", "code": "USD"}},
    ]
    assert result(_invoice(fb, "N-1", lines), "invoice")["amount"]["amount"] == "60.00"
    sandbox.control.switch("freshbooks", "negative_line_amounts", False)
    assert _invoice(fb, "N-2", lines).status_code == 422


def test_items_are_searched_by_exact_sku_and_credit_notes_are_stored(fb):
    for sku in ("SO-TENT", "SO-TENT-2"):
        result(fb.post(f"{ACCOUNT}/items/items", {"item": {"name": sku, "sku": sku}}), "item")
    found = result(fb.get(f"{ACCOUNT}/items/items", **{"search[sku]": "SO-TENT"}), "items")
    assert [i["sku"] for i in found] == ["SO-TENT"]
    body = {"clientid": 88002, "credit_number": "100-R3", "currency_code": "USD", "lines": [{"name": "Refund 3"}]}
    note = result(fb.post(f"{ACCOUNT}/credit_notes/credit_notes", {"credit_note": body}), "credit_note")
    listed = result(fb.get(f"{ACCOUNT}/credit_notes/credit_notes"), "credit_notes")
    assert [c["credit_number"] for c in listed] == ["100-R3"] and note["creditid"] == note["id"]


def test_reference_lists_and_their_envelopes(fb):
    categories = result(fb.get(f"{ACCOUNT}/expenses/categories"), "categories")
    assert [(c["id"], c["category"]) for c in categories][:2] == [
        (3001, "Contract Labor"),
        (3002, "Software & Subscriptions"),
    ]
    assert {c["userid"] for c in result(fb.get(f"{ACCOUNT}/users/clients"), "clients")} == {88001, 88002, 88003}
    assert len(result(fb.get(f"{ACCOUNT}/users/staffs"), "staffs")) == 11  # 3 + bamboohr_to_freshbooks's 8
    assert result(fb.get(f"{ACCOUNT}/items/items"), "items")[0]["unit_cost"] == {"amount": "4500.00", "code": "USD"}
    expenses = {e["id"]: e for e in result(fb.get(f"{ACCOUNT}/expenses/expenses"), "expenses")}
    assert expenses[64001]["amount"]["amount"] == "86.40"
    team = fb.get(f"/auth/api/v1/businesses/{BRIGHTSIDE_BUSINESS_ID}/team_members", per_page=2).json()
    assert [m["first_name"] for m in team["response"]] == ["Maya", "Luis"]
    assert team["meta"] == {"page": 1, "per_page": 2, "total": 12}  # 3 + bamboohr_to_freshbooks's 9


def test_ledger_accounts_data_envelope_and_errors(fb):
    path = f"/accounting/businesses/{BRIGHTSIDE_BUSINESS_UUID}/ledger_accounts/accounts"
    data = fb.get(path).json()["data"]
    numbers = {a["number"]: (a["name"], a["type"]) for a in data}
    assert numbers["6030"] == ("Advertising", "expense")
    assert numbers["2000"] == ("Accounts Payable", "liability")
    assert data[0]["updated_at"].endswith("Z")
    invalid = fb.post(path, {"type": "expense"})
    assert invalid.status_code == 400
    assert invalid.json() == {
        "errors": {
            "message": "Request failed with status code 400",
            "status": 400,
            "details": [
                {
                    "reason": "name: This field is required.",
                    "metadata": {"message": "This field is required.", "field": "name"},
                }
            ],
        }
    }
    assert fb.get(f"{path}/no-such-uuid").json()["errors"]["status"] == 404


# ------------------------------------------------------------------ webhooks


def _deliveries(sandbox, name=None):
    sandbox.sandbox.ctx.webhooks.wait_idle()
    found = []
    for delivery in sandbox.control.webhooks()[sandbox.first_delivery :]:
        if delivery["system"] != "freshbooks":
            continue
        fields = parse_qsl(delivery["body"])
        if name is None or dict(fields).get("name") == name:
            found.append((fields, delivery["headers"]))
    return found


def _register(sandbox, fb, event, uri="http://127.0.0.1:9/hooks"):
    before = len(_deliveries(sandbox))
    callback = result(fb.post(CALLBACKS, {"callback": {"event": event, "uri": uri}}), "callback")
    assert callback["verified"] is False
    verification = dict(_deliveries(sandbox)[before][0])
    assert verification["name"] == "callback.verify"
    assert verification["object_id"] == str(callback["callbackid"])
    return callback, verification["verifier"]


def test_callback_registration_verification_and_signed_events(sandbox, fb):
    callback, verifier = _register(sandbox, fb, "bill")
    bad = fb.put(f"{CALLBACKS}/{callback['callbackid']}", {"callback": {"verifier": "wrong"}})
    assert bad.status_code == 422
    assert bad.json()["errno"] == 422
    assert bad.json()["details"]
    # not verified yet: changes send nothing
    fb.put(f"{BILLS}/7104", {"bill": {"bill_number": "ADB-2026-11b"}})
    assert _deliveries(sandbox, "bill.update") == []
    verified = result(fb.put(f"{CALLBACKS}/{callback['callbackid']}", {"callback": {"verifier": verifier}}), "callback")
    assert verified["verified"] is True
    fb.put(f"{BILLS}/7104", {"bill": {"bill_number": "ADB-2026-11c"}})
    ((fields, headers),) = _deliveries(sandbox, "bill.update")
    assert [k for k, _ in fields] == ["name", "object_id", "account_id", "business_id", "identity_id", "user_id"]
    assert dict(fields)["object_id"] == "7104"
    assert dict(fields)["account_id"] == BRIGHTSIDE_ACCOUNT_ID
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    # FreshBooks' reference algorithm, written out independently of the emulator
    import base64
    import hashlib
    import hmac

    message = json.dumps({k: str(v) for k, v in fields})
    expected = base64.b64encode(hmac.new(verifier.encode(), message.encode(), hashlib.sha256).digest()).decode()
    assert headers["X-FreshBooks-Hmac-SHA256"] == expected == webhook_signature(fields, verifier)
    # soft delete is a .delete event; a vendor change is not a bill event
    fb.put(f"{BILLS}/7104", {"bill": {"vis_state": 1}})
    assert len(_deliveries(sandbox, "bill.delete")) == 1
    fb.put(f"{ACCOUNT}/bill_vendors/bill_vendors/5102", {"bill_vendor": {"note": "x"}})
    assert _deliveries(sandbox, "bill_vendor.update") == []


def test_bill_payment_events_and_the_switch(sandbox, fb):
    callback, verifier = _register(sandbox, fb, "all")
    fb.put(f"{CALLBACKS}/{callback['callbackid']}", {"callback": {"verifier": verifier}})
    payment = result(_pay(fb, "5"), "bill_payment")
    assert [dict(f)["object_id"] for f, _ in _deliveries(sandbox, "bill_payment.create")] == [str(payment["id"])]
    assert [dict(f)["object_id"] for f, _ in _deliveries(sandbox, "bill.update")] == ["7101"]
    sandbox.control.switch("freshbooks", "bill_payment_events", False)
    _pay(fb, "5")
    assert len(_deliveries(sandbox, "bill_payment.create")) == 1
    refused = fb.post(CALLBACKS, {"callback": {"event": "bill_payment.create", "uri": "http://127.0.0.1:9/x"}})
    assert refused.status_code == 422


def test_callback_errors_list_resend_and_delete(sandbox, fb):
    unknown = fb.post(CALLBACKS, {"callback": {"event": "bill.explode", "uri": "not a uri"}})
    assert unknown.status_code == 422
    assert unknown.json()["details"] == ["event: Value error, Unrecognized event.", "uri: Value error, Invalid URI."]
    invoice_cb, _ = _register(sandbox, fb, "invoice.create")
    _register(sandbox, fb, "bill.create")
    listed = result(fb.get(CALLBACKS, **{"search[event]": "invoice"}), "callbacks")
    assert [c["callbackid"] for c in listed] == [invoice_cb["callbackid"]]
    result(fb.put(f"{CALLBACKS}/{invoice_cb['callbackid']}", {"callback": {"resend": True}}), "callback")
    assert len(_deliveries(sandbox, "callback.verify")) == 3
    assert fb.delete(f"{CALLBACKS}/{invoice_cb['callbackid']}").status_code == 204
    gone = fb.get(f"{CALLBACKS}/{invoice_cb['callbackid']}")
    assert gone.status_code == 404
    assert gone.json() == {"errno": 404, "message": "Requested resource could not be found."}
    unauthenticated = requests.get(fb.base + CALLBACKS, timeout=10)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["errno"] == 401


# ------------------------------------------------------------------ faults, limits, volume


def test_faults_use_the_vendor_shapes(sandbox, fb):
    sandbox.control.fault("freshbooks", "500")
    failed = fb.get(BILLS)
    assert failed.status_code == 500
    assert errors(failed)[0]["errno"] == 500
    sandbox.control.fault("freshbooks", "429")
    assert fb.get(BILLS).status_code == 429


def test_rate_limit_switch(sandbox, fb):
    sandbox.control.switch("freshbooks", "rate_limit_per_minute", 3)
    sandbox.control.switch("freshbooks", "rate_limit_retry_after", 7)
    statuses = [fb.get(BILLS).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert fb.get(BILLS).headers["Retry-After"] == "7"
    sandbox.control.advance_clock(61)
    assert fb.get(BILLS).status_code == 200


def test_generate_is_fast_and_spreads_bills_over_vendors(sandbox, fb):
    started = time.monotonic()
    sandbox.control.generate({"freshbooks": {"bill_vendors": 1000, "bills": 10000}})
    assert time.monotonic() - started < 10
    total = fb.get(BILLS, per_page=100, page=37).json()["response"]["result"]
    assert total["total"] == 10008
    assert total["pages"] == 101
    assert all(1 <= len(b["lines"]) <= 3 for b in total["bills"])
    vendors = fb.get(f"{ACCOUNT}/bill_vendors/bill_vendors", per_page=1).json()["response"]["result"]
    assert vendors["total"] == 1005
    assert len({b["vendorid"] for b in total["bills"]}) > 50
