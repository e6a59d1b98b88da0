"""The ML Connector page over HTTP (FastAPI's test client), a real state store, a stand-in auth manager."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from airflow_provider_mlconnector.state import StateStore
from airflow_provider_mlconnector.state import cli as state_cli
from airflow_provider_mlconnector.ui.access import Viewer
from airflow_provider_mlconnector.ui.app import create_app
from airflow_provider_mlconnector.ui.runs import RunView

PAIR = "freshbooks_to_bill"


@dataclass
class RoleAccess:
    """Users by the ``user`` header: ``op`` may act, ``viewer`` may only look, nobody else gets in."""

    async def viewer(self, request):
        name = request.headers.get("user")
        if name not in ("op", "viewer"):
            raise HTTPException(status_code=401, detail="Not authenticated")
        return Viewer(name, None)

    def may_view(self, viewer, pair):
        return True

    def may_act(self, viewer, pair):
        return viewer.name == "op"


class OneRun:
    def last_runs(self, dag_id, limit):
        summary = {"entities": {"bill": {"read": 6, "created": 5, "quarantined": 1}}}
        report = {
            "pair": dag_id,
            "checked_at": "2026-11-30T00:00:00+00:00",
            "entities": [
                {
                    "entity": "bill",
                    "source_system": "freshbooks",
                    "target_system": "bill",
                    "checked": 5,
                    "retired": 0,
                    "drift": [
                        {
                            "entity": "bill",
                            "source_id": "7101",
                            "target_id": "00n1",
                            "problems": ["amount differs: FreshBooks 120.00, BILL 110.00"],
                        }
                    ],
                }
            ],
        }
        return [RunView("scheduled__1", "success", None, summary, report)] if dag_id == PAIR else []


@pytest.fixture
def store(tmp_path):
    return StateStore(f"sqlite:///{tmp_path}/state.db")


@pytest.fixture
def client(store):
    return TestClient(create_app(store=lambda: store, access=RoleAccess(), runs=OneRun()))


@pytest.fixture
def letters(store):
    meals = store.dead_letters.add(
        PAIR,
        "bill",
        "BRT",
        "7106",
        reason="category 'Meals' has no GL account",
        error_kind="unmapped_account",
        payload={"id": 7106, "api_key": "s3cret"},
    )
    vendor = store.dead_letters.add(PAIR, "vendor", "BRT", "55", reason="unknown country", error_kind="validation")
    return meals, vendor


def test_nobody_signed_out_sees_the_page(client):
    assert client.get("/").status_code == 401


def test_overview_shows_the_runs_summary_the_drift_and_open_letters_by_kind(client, letters):
    page = client.get("/", headers={"user": "viewer"}).text
    assert "created 5" in page and "quarantined 1" in page
    assert "unmapped_account</a>: 1" in page and "validation</a>: 1" in page
    assert "1 record(s)" in page
    report = client.get(f"/reconcile/{PAIR}", headers={"user": "viewer"}).text
    assert "amount differs: FreshBooks 120.00, BILL 110.00" in report


def test_letters_filter_by_kind_entity_and_age(client, letters):
    page = client.get("/letters", params={"kind": "unmapped_account"}, headers={"user": "viewer"}).text
    assert "7106" in page and "unknown country" not in page
    page = client.get("/letters", params={"entity": "vendor"}, headers={"user": "viewer"}).text
    assert "unknown country" in page and "7106" not in page
    page = client.get("/letters", params={"older_than_hours": "1"}, headers={"user": "viewer"}).text
    assert "no dead letters match" in page


def test_a_letter_shows_its_redacted_payload(client, letters):
    page = client.get(f"/letters/{letters[0].id}", headers={"user": "viewer"}).text
    assert "s3cret" not in page and "***" in page


def test_replay_flags_the_letter_and_writes_an_audit_row_naming_the_user(client, store, letters):
    meals = letters[0]
    answer = client.post(f"/letters/{meals.id}/replay", headers={"user": "op"}, follow_redirects=False)
    assert answer.status_code == 303
    assert store.dead_letters.get(meals.id).status.value == "replay_requested"
    (row,) = [r for r in store.audit.history("freshbooks", "7106") if r.action.value == "replay_requested"]
    assert row.summary["by"] == "op" and row.summary["via"] == "ui" and row.summary["dead_letter_id"] == meals.id
    page = client.get(f"/letters/{meals.id}", headers={"user": "op"}).text
    assert "replay_requested" in page and '<span class="by">op</span>' in page


def test_a_read_only_user_cannot_replay_or_resolve(client, store, letters):
    meals = letters[0]
    page = client.get(f"/letters/{meals.id}", headers={"user": "viewer"}).text
    assert 'id="replay" disabled' in page
    assert client.post(f"/letters/{meals.id}/replay", headers={"user": "viewer"}).status_code == 403
    assert (
        client.post(f"/letters/{meals.id}/resolve", data={"note": "x"}, headers={"user": "viewer"}).status_code == 403
    )
    assert store.dead_letters.get(meals.id).status.value == "open"
    assert store.audit.history("freshbooks", "7106") == []


def test_resolve_needs_a_note_and_records_it(client, store, letters):
    meals = letters[0]
    client.post(f"/letters/{meals.id}/resolve", data={"note": " "}, headers={"user": "op"})
    assert store.dead_letters.get(meals.id).status.value == "open"
    client.post(f"/letters/{meals.id}/resolve", data={"note": "entered by hand in BILL"}, headers={"user": "op"})
    assert store.dead_letters.get(meals.id).resolution_note == "entered by hand in BILL"
    (row,) = store.audit.history("freshbooks", "7106")
    assert (row.action.value, row.summary["by"], row.summary["note"]) == ("resolved", "op", "entered by hand in BILL")


def test_a_post_from_another_origin_is_refused(client, store, letters):
    headers = {"user": "op", "origin": "https://evil.example"}
    assert client.post(f"/letters/{letters[0].id}/replay", headers=headers).status_code == 403
    assert store.dead_letters.get(letters[0].id).status.value == "open"


def test_the_cli_replays_through_the_same_code_and_names_its_user(store, letters):
    assert state_cli.main(["dlq", "replay", str(letters[1].id), "--by", "alice"], store=store) == 0
    (row,) = store.audit.history("freshbooks", "55")
    assert (row.action.value, row.summary["by"], row.summary["via"]) == ("replay_requested", "alice", "cli")


def test_history_finds_a_record_by_its_target_id_with_its_id_map_row(client, store):
    store.id_map.record(PAIR, "bill", "BRT", "7101", "008ORG", "00n1", "v|PFS-1041", "fp")
    from airflow_provider_mlconnector.state import AuditEvent

    store.audit.record(AuditEvent(PAIR, "bill", "created", "freshbooks", "BRT", "7101", "bill", "008ORG", "00n1"))
    page = client.get("/history", params={"record_id": "00n1"}, headers={"user": "viewer"}).text
    assert "BRT / 7101" in page and "008ORG / 00n1" in page and "created" in page


def test_the_filter_form_as_a_browser_submits_it_with_empty_fields(client, letters):
    """The form sends every field, the empty ones as ``name=``: no field may refuse an empty value."""
    form = {"pair": "", "entity": "", "kind": "unmapped_account", "status": "open", "older_than_hours": ""}
    answer = client.get("/letters", params=form, headers={"user": "viewer"})
    assert answer.status_code == 200, answer.text
    assert "7106" in answer.text and "unknown country" not in answer.text


def test_an_age_that_is_not_a_number_is_named(client, letters):
    answer = client.get("/letters", params={"older_than_hours": "soon"}, headers={"user": "viewer"})
    assert answer.status_code == 400 and "older_than_hours" in answer.text
