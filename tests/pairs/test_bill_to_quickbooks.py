"""BILL -> QuickBooks mapping rules: a BILL record in, a QuickBooks payload / Retire / Skip / dead letter out."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_mlconnector.exceptions import (
    ConfigurationError,
    MappingError,
    NotLinkedYetError,
    RecordError,
    RecordRejectedError,
)
from airflow_provider_mlconnector.operators.pair import Ctx, Retire, Skip
from airflow_provider_mlconnector.pairs import bill_to_quickbooks as pair
from airflow_provider_mlconnector.pairs.bill_to_quickbooks import (
    Chart,
    check_against_bill,
    document_payload,
    purchase_order_payload,
    read_quickbooks_changes,
    short_doc_number,
    vendor_payload,
    with_accounts,
    write_id,
)
from airflow_provider_mlconnector.state.watermarks import Window

QB_ACCOUNTS = (
    {"Id": "33", "Name": "Accounts Payable (A/P)", "AcctNum": "2000", "AccountType": "Accounts Payable"},
    {"Id": "59", "Name": "Software & Subscriptions", "AcctNum": "6020", "AccountType": "Expense"},
    {"Id": "61", "Name": "Office Supplies", "AcctNum": "6040", "AccountType": "Expense"},
    {"Id": "62", "Name": "Meals", "AccountType": "Expense"},
)
SOFTWARE = {"id": "0ca02SOFT", "accountNumber": "6020", "name": "Software & Subscriptions"}
CHART = Chart(QB_ACCOUNTS, overrides={}, ap_override=None)


class FakeCtx(Ctx):
    """A Ctx whose ID map is a dict: ``links[(entity, source id)] = target id``."""

    def __init__(self, *, links: dict[tuple[str, str], str] | None = None, mapped: bool = False, **kw: Any) -> None:
        super().__init__(kw.get("source"), kw.get("target"), kw.get("reference", CHART), mapped, {})
        self.links = links or {}
        self.versions: dict[tuple[str, str], str] = kw.get("versions", {})  # SyncTokens our writes left

    def target_id(self, entity: str, source_id: object) -> str:
        try:
            return self.links[(entity, str(source_id))]
        except KeyError:
            raise NotLinkedYetError(f"its {entity} {source_id} is not synced yet") from None

    def source_id(self, entity: str, target_id: object) -> str:
        for (linked_entity, source), target in self.links.items():
            if linked_entity == entity and target == str(target_id):
                return source
        raise NotLinkedYetError(f"its {entity} {target_id} is not linked by this integration yet")

    def written_unchanged(self, entity: str, target_id: object, version: object) -> bool:
        self.source_id(entity, target_id)
        return version is not None and self.versions.get((entity, str(target_id))) == str(version)


def bill_vendor(**fields: Any) -> dict[str, Any]:
    return {
        "id": "009V1",
        "name": "Cloudline Hosting",
        "accountType": "BUSINESS",
        "email": "invoices@cloudline.example",
        "phone": "5035550100",
        "accountNumber": "CL-7781",
        "billCurrency": "USD",
        "archived": False,
        "address": {
            "line1": "500 NW Harbor Blvd",
            "city": "Portland",
            "stateOrProvince": "OR",
            "zipOrPostalCode": "97209",
            "country": "US",
        },
        **fields,
    }


def bill_record(**fields: Any) -> dict[str, Any]:
    record = {
        "id": "00n02CLH01",
        "vendorId": "009V1",
        "invoice": {"invoiceNumber": "CLH-3301", "invoiceDate": "2026-10-15"},
        "dueDate": "2026-11-14",
        "paymentStatus": "UNPAID",
        "archived": False,
        "billLineItems": [
            {
                "amount": Decimal("400.10"),
                "description": "Hosting",
                "classifications": {"chartOfAccountId": "0ca02SOFT"},
            },
            {
                "amount": Decimal("19.90"),
                "description": "Backups",
                "classifications": {"chartOfAccountId": "0ca02SOFT"},
            },
        ],
        **fields,
    }
    return with_accounts(record, {"0ca02SOFT": SOFTWARE, "0ca02MEAL": {"id": "0ca02MEAL", "name": "Client Meals"}})


LINKED = {("vendor", "009V1"): "57"}

# ---------------------------------------------------------------------------------- vendors


def test_a_bill_vendor_becomes_a_quickbooks_vendor_with_an_alpha3_country() -> None:
    payload = vendor_payload(bill_vendor(), FakeCtx())
    assert payload == {
        "DisplayName": "Cloudline Hosting",
        "Active": True,
        "CompanyName": "Cloudline Hosting",
        "PrimaryEmailAddr": {"Address": "invoices@cloudline.example"},
        "PrimaryPhone": {"FreeFormNumber": "5035550100"},
        "AcctNum": "CL-7781",
        "CurrencyRef": {"value": "USD"},
        "BillAddr": {
            "Line1": "500 NW Harbor Blvd",
            "City": "Portland",
            "CountrySubDivisionCode": "OR",
            "PostalCode": "97209",
            "Country": "USA",
        },
    }


def test_the_1099_flag_is_sent_only_when_bill_has_it() -> None:
    assert vendor_payload(bill_vendor(track1099=True), FakeCtx())["Vendor1099"] is True  # type: ignore[index]
    assert "Vendor1099" not in vendor_payload(bill_vendor(), FakeCtx())  # type: ignore[operator]


def test_a_person_vendor_has_no_company_name() -> None:
    assert "CompanyName" not in vendor_payload(bill_vendor(accountType="PERSON"), FakeCtx())  # type: ignore[operator]


def test_an_archived_vendor_is_made_inactive_when_synced_and_skipped_otherwise() -> None:
    assert vendor_payload(bill_vendor(archived=True), FakeCtx(mapped=True))["Active"] is False  # type: ignore[index]
    skipped = vendor_payload(bill_vendor(archived=True), FakeCtx(mapped=False))
    assert isinstance(skipped, Skip) and "never synced" in skipped.reason


def test_a_restored_vendor_is_active_again() -> None:
    assert vendor_payload(bill_vendor(archived=False), FakeCtx(mapped=True))["Active"] is True  # type: ignore[index]


def test_a_vendor_without_a_name_is_a_dead_letter() -> None:
    with pytest.raises(MappingError, match="no name"):
        vendor_payload(bill_vendor(name="  "), FakeCtx())


def test_a_name_with_a_colon_is_a_dead_letter_never_a_silent_rename() -> None:
    with pytest.raises(MappingError, match="a colon"):
        vendor_payload(bill_vendor(name="Acme: West"), FakeCtx())


def test_an_unknown_country_is_a_dead_letter() -> None:
    with pytest.raises(MappingError):
        vendor_payload(bill_vendor(address={**bill_vendor()["address"], "country": "Atlantis"}), FakeCtx())


# ---------------------------------------------------------------------------------- purchase orders


def test_a_bill_becomes_a_purchase_order_with_exact_amounts_and_mapped_accounts() -> None:
    payload = purchase_order_payload(bill_record(), FakeCtx(links=LINKED))
    assert payload == {
        "VendorRef": {"value": "57"},
        "APAccountRef": {"value": "33"},
        "DocNumber": "CLH-3301",
        "TxnDate": "2026-10-15",
        "DueDate": "2026-11-14",
        "PrivateNote": "BILL bill 00n02CLH01",
        "POStatus": "Open",
        "Line": [
            {
                "DetailType": "AccountBasedExpenseLineDetail",
                "Amount": 400.10,
                "Description": "Hosting",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "59"}},
            },
            {
                "DetailType": "AccountBasedExpenseLineDetail",
                "Amount": 19.90,
                "Description": "Backups",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "59"}},
            },
        ],
    }


def test_a_paid_bill_closes_its_purchase_order() -> None:
    payload = purchase_order_payload(bill_record(paymentStatus="PAID"), FakeCtx(links=LINKED))
    assert payload["POStatus"] == "Closed"  # type: ignore[index]


def test_a_partly_paid_bill_keeps_its_purchase_order_open() -> None:
    payload = purchase_order_payload(bill_record(paymentStatus="PARTIAL"), FakeCtx(links=LINKED))
    assert payload["POStatus"] == "Open"  # type: ignore[index]


def test_the_bill_mode_writes_the_same_document_without_a_po_status() -> None:
    payload = document_payload(bill_record(), FakeCtx(links=LINKED))
    assert isinstance(payload, dict) and "POStatus" not in payload and payload["DocNumber"] == "CLH-3301"


def test_a_bill_whose_vendor_is_not_synced_waits() -> None:
    with pytest.raises(NotLinkedYetError):
        purchase_order_payload(bill_record(), FakeCtx())


def test_an_archived_bill_retires_its_purchase_order() -> None:
    assert isinstance(purchase_order_payload(bill_record(archived=True), FakeCtx(links=LINKED)), Retire)


def test_a_long_invoice_number_gets_a_deterministic_21_character_doc_number_and_a_full_note() -> None:
    number = "INV-2026-000123456789-EU"
    payload = purchase_order_payload(
        bill_record(invoice={"invoiceNumber": number, "invoiceDate": "2026-10-15"}), FakeCtx(links=LINKED)
    )
    doc = payload["DocNumber"]  # type: ignore[index]
    assert len(doc) == 21 and doc.startswith("INV-2026-000~") and doc == short_doc_number(number)
    assert short_doc_number(number + "X") != doc
    assert payload["PrivateNote"] == f"BILL bill 00n02CLH01; BILL invoice number {number}"  # type: ignore[index]


def test_a_21_character_invoice_number_is_kept_as_is() -> None:
    assert short_doc_number("A" * 21) == "A" * 21


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([], "no lines"),
        ([{"amount": Decimal("0"), "classifications": {"chartOfAccountId": "0ca02SOFT"}}], "must be positive"),
        ([{"amount": Decimal("-5"), "classifications": {"chartOfAccountId": "0ca02SOFT"}}], "must be positive"),
        ([{"amount": Decimal("5")}], "no chart-of-accounts entry"),
    ],
)
def test_bad_bills_are_dead_letters_with_the_reason(lines: list[dict[str, Any]], reason: str) -> None:
    with pytest.raises(MappingError, match=reason):
        purchase_order_payload(bill_record(billLineItems=lines), FakeCtx(links=LINKED))


def test_a_line_on_an_unmapped_account_dead_letters_the_bill_naming_the_account() -> None:
    lines = [{"amount": Decimal("48.20"), "classifications": {"chartOfAccountId": "0ca02MEAL"}}]
    with pytest.raises(MappingError, match="'Client Meals'") as caught:
        purchase_order_payload(bill_record(billLineItems=lines), FakeCtx(links=LINKED))
    assert caught.value.kind == "unmapped_account"


def test_a_missing_amount_is_malformed_not_guessed() -> None:
    with pytest.raises(KeyError):
        purchase_order_payload(bill_record(billLineItems=[{"description": "x"}]), FakeCtx(links=LINKED))


# ---------------------------------------------------------------------------------- accounts


def test_accounts_map_by_override_then_number_then_name() -> None:
    chart = Chart(QB_ACCOUNTS, overrides={"Client Meals": "Meals", "6020": "6040"}, ap_override=None)
    assert chart.account_for({"id": "0ca1", "name": "Client Meals"}) == "62"  # override by name
    assert chart.account_for(SOFTWARE) == "61"  # an override wins over the same number
    assert CHART.account_for(SOFTWARE) == "59"  # by AcctNum
    assert CHART.account_for({"id": "0ca2", "name": "office supplies"}) == "61"  # by name, any case


def test_an_override_naming_a_missing_account_stays_unmapped() -> None:
    chart = Chart(QB_ACCOUNTS, overrides={"6020": "9999"}, ap_override=None)
    with pytest.raises(MappingError, match="6020"):
        chart.account_for(SOFTWARE)


def test_several_ap_accounts_need_the_variable() -> None:
    two = Chart((*QB_ACCOUNTS, {"Id": "34", "Name": "A/P EUR", "AccountType": "Accounts Payable"}), {}, None)
    with pytest.raises(ConfigurationError, match=pair.AP_ACCOUNT_VARIABLE):
        two.ap_account()
    assert Chart(two.accounts, {}, "A/P EUR").ap_account() == "34"


def test_bill_lines_carry_the_bill_chart_entries_they_use() -> None:
    record = bill_record()
    assert record["_accounts"] == {"0ca02SOFT": SOFTWARE}


# ---------------------------------------------------------------------------------- retries and refusals


def test_the_request_id_follows_the_record_its_content_and_the_hour() -> None:
    at = datetime(2026, 12, 1, 10, 5, tzinfo=timezone.utc)
    first = write_id("vendor", "Cloudline Hosting", {"DisplayName": "Cloudline Hosting"}, now=at)
    assert first == write_id("vendor", "Cloudline Hosting", {"DisplayName": "Cloudline Hosting"}, now=at)
    assert len(first) <= 50
    assert first != write_id("vendor", "Cloudline Hosting", {"DisplayName": "Cloudline"}, now=at)
    assert first != write_id(
        "vendor", "Cloudline Hosting", {"DisplayName": "Cloudline Hosting"}, now=at + timedelta(hours=1)
    )


class NameQueries:
    """A QuickBooks hook that only answers the DisplayName queries of a 6240."""

    def __init__(self, holders: dict[str, dict[str, Any]]) -> None:
        self.holders = holders

    quote = staticmethod(pair.QuickBooksHook.quote)

    def query_entities(self, entity: str, where: str, **kwargs: Any) -> list[dict[str, Any]]:
        return [self.holders[entity]] if entity in self.holders else []


def rejected(code: str, message: str = "refused") -> RecordRejectedError:
    return RecordRejectedError(message, system="quickbooks", status=400, code=code)


def test_a_name_used_by_a_customer_is_a_dead_letter_naming_the_customer() -> None:
    hook = NameQueries({"Customer": {"Id": "12", "DisplayName": "Harbor Street Bakery"}})
    error = pair.refusal(hook, rejected("6240"), {"DisplayName": "Harbor Street Bakery"})  # type: ignore[arg-type]
    assert (
        error.kind == "validation" and "Customer 12 'Harbor Street Bakery'" in error.reason and "6240" in error.reason
    )


def test_a_duplicate_doc_number_and_a_closed_period_are_named() -> None:
    payload = {"DocNumber": "CLH-3301", "TxnDate": "2025-12-31"}
    duplicate = pair.refusal(NameQueries({}), rejected("6140"), payload)  # type: ignore[arg-type]
    assert "numbered CLH-3301" in duplicate.reason and "6140" in duplicate.reason
    closed = pair.refusal(NameQueries({}), rejected("6210"), payload)  # type: ignore[arg-type]
    assert "closed for 2025-12-31" in closed.reason and closed.kind == duplicate.kind == "validation"


def test_other_refusals_stay_quickbooks_own() -> None:
    original = rejected("6000", "Business Validation Error")
    assert pair.refusal(NameQueries({}), original, {}) is original  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- edits in QuickBooks


class BillReads:
    def __init__(self, vendor: dict[str, Any], bill: dict[str, Any]) -> None:
        self.vendors = _Getter(vendor)
        self.bills = _Getter(bill)


class _Getter:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def get(self, record_id: str) -> dict[str, Any]:
        return self.record


def check(
    change: dict[str, Any],
    *,
    vendor: dict[str, Any] | None = None,
    bill: dict[str, Any] | None = None,
    versions: dict[tuple[str, str], str] | None = None,
    target: Any = None,
):
    links = {**LINKED, ("purchase_order", "00n02CLH01"): "130"}
    bill_reads = target or BillReads(vendor or bill_vendor(), bill or bill_record())
    ctx = FakeCtx(links=links, target=bill_reads, versions=versions or {})
    return check_against_bill(change, ctx)


class NoReads:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"BILL was read ({name}) for a record nobody changed")


def test_a_record_still_at_the_sync_token_our_write_left_is_skipped_without_reading_bill() -> None:
    ours = {("purchase_order", "130"): "2", ("vendor", "57"): "0"}
    skipped = check({"entity": "PurchaseOrder", "qbo": quickbooks_po(SyncToken="2")}, versions=ours, target=NoReads())
    assert isinstance(skipped, Skip) and "as this integration last wrote it" in skipped.reason
    vendor = {"Id": "57", "DisplayName": "Renamed by hand", "SyncToken": "0"}
    assert isinstance(check({"entity": "Vendor", "qbo": vendor}, versions=ours, target=NoReads()), Skip)


def test_a_record_edited_after_our_write_has_a_new_sync_token_and_is_compared() -> None:
    ours = {("purchase_order", "130"): "2"}
    with pytest.raises(RecordError, match=re.escape("TotalAmt is 450.00")):
        check({"entity": "PurchaseOrder", "qbo": quickbooks_po(TotalAmt=450.0, SyncToken="3")}, versions=ours)
    deleted = {"Id": "130", "status": "Deleted", "SyncToken": "2"}
    with pytest.raises(RecordError, match="deleted in QuickBooks"):
        check({"entity": "PurchaseOrder", "qbo": deleted}, versions=ours)


def quickbooks_po(**fields: Any) -> dict[str, Any]:
    return {
        "Id": "130",
        "DocNumber": "CLH-3301",
        "VendorRef": {"value": "57"},
        "TotalAmt": 420.0,
        "POStatus": "Open",
        "Line": [
            {"DetailType": "AccountBasedExpenseLineDetail", "Amount": 400.1},
            {"DetailType": "AccountBasedExpenseLineDetail", "Amount": 19.9},
        ],
        **fields,
    }


def test_a_quickbooks_record_that_agrees_with_bill_is_skipped() -> None:
    assert isinstance(check({"entity": "PurchaseOrder", "qbo": quickbooks_po()}), Skip)
    vendor = {"Id": "57", "DisplayName": "Cloudline Hosting", "Active": True}
    assert isinstance(check({"entity": "Vendor", "qbo": vendor}), Skip)


def test_an_amount_edited_in_quickbooks_is_reported_not_overwritten() -> None:
    with pytest.raises(RecordError, match=re.escape("TotalAmt is 450.00, BILL says 420.00")) as caught:
        check({"entity": "PurchaseOrder", "qbo": quickbooks_po(TotalAmt=450.0)})
    assert caught.value.kind == "edited_in_quickbooks"


def test_a_vendor_renamed_in_quickbooks_is_reported() -> None:
    vendor = {"Id": "57", "DisplayName": "Cloudline Hosting LLC", "Active": True}
    with pytest.raises(RecordError, match="DisplayName"):
        check({"entity": "Vendor", "qbo": vendor})


def test_a_purchase_order_deleted_in_quickbooks_is_reported() -> None:
    with pytest.raises(RecordError) as caught:
        check({"entity": "PurchaseOrder", "qbo": {"Id": "130", "status": "Deleted"}})
    assert caught.value.kind == "deleted_in_quickbooks"


def test_a_purchase_order_deleted_because_its_bill_was_archived_is_not_reported() -> None:
    change = {"entity": "PurchaseOrder", "qbo": {"Id": "130", "status": "Deleted"}}
    assert isinstance(check(change, bill=bill_record(archived=True)), Skip)


def test_records_this_integration_did_not_write_are_left_alone() -> None:
    skipped = check({"entity": "Vendor", "qbo": {"Id": "999", "DisplayName": "Someone else"}})
    assert isinstance(skipped, Skip) and "not written by this integration" in skipped.reason


class Changes:
    def __init__(self) -> None:
        self.since: datetime | None = None

    def get_changes(self, entities: list[str], since: datetime) -> dict[str, list[dict[str, Any]]]:
        self.since = since
        return {"Vendor": [{"Id": "57"}], "PurchaseOrder": [{"Id": "130", "status": "Deleted"}], "Bill": []}


def test_quickbooks_changes_are_read_by_cdc_within_its_30_days() -> None:
    end = datetime(2026, 12, 1, tzinfo=timezone.utc)
    hook = Changes()
    rows = list(read_quickbooks_changes(hook, Window(start=None, end=end, is_backfill=False)))  # type: ignore[arg-type]
    assert [r["id"] for r in rows] == ["Vendor/57", "PurchaseOrder/130"]
    assert hook.since is not None and end - hook.since < timedelta(days=30)
    recent = end - timedelta(hours=2)
    list(read_quickbooks_changes(hook, Window(start=recent, end=end, is_backfill=False)))  # type: ignore[arg-type]
    assert hook.since == recent


def test_the_document_readers_follow_the_target_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{pair.TARGET_VARIABLE.upper()}", "bill")
    assert pair.target_mode() == "bill"
    window = Window(start=None, end=datetime(2026, 12, 1, tzinfo=timezone.utc), is_backfill=False)
    assert list(pair.bill_reader("purchase_order")(object(), window)) == []  # type: ignore[arg-type]
    monkeypatch.setenv(f"AIRFLOW_VAR_{pair.TARGET_VARIABLE.upper()}", "invoices")
    with pytest.raises(ConfigurationError):
        pair.target_mode()


# ---------------------------------------------------------------------------------- writes


class FakeResource:
    """One QuickBooks collection in memory: what the pair's write functions call."""

    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records
        self.updates: list[tuple[str, dict[str, Any], str | None]] = []
        self.deleted: list[str] = []

    def get(self, record_id: str) -> dict[str, Any]:
        return self.records[record_id]

    def update(self, record_id: str, changes: dict[str, Any], *, request_id=None, current=None) -> dict[str, Any]:
        self.updates.append((record_id, changes, request_id))
        return {**self.records[record_id], **changes}

    def delete(self, record_id: str) -> None:
        self.deleted.append(record_id)


class FakeBooks:
    def __init__(self, **resources: FakeResource) -> None:
        for name, resource in resources.items():
            setattr(self, name, resource)


def test_a_vendor_update_is_sparse_without_the_currency_and_carries_a_request_id() -> None:
    vendors = FakeResource({"57": {"Id": "57", "SyncToken": "3", "CurrencyRef": {"value": "USD"}}})
    payload = vendor_payload(bill_vendor(), FakeCtx())
    pair.update_vendor(FakeBooks(vendors=vendors), "57", payload)  # type: ignore[arg-type]
    ((record_id, changes, request_id),) = vendors.updates
    assert record_id == "57" and "CurrencyRef" not in changes and changes["DisplayName"] == "Cloudline Hosting"
    assert request_id


def test_a_bill_currency_change_is_for_a_person_quickbooks_keeps_it() -> None:
    vendors = FakeResource({"57": {"Id": "57", "SyncToken": "3", "CurrencyRef": {"value": "USD"}}})
    with pytest.raises(RecordError) as caught:
        pair.update_vendor(FakeBooks(vendors=vendors), "57", vendor_payload(bill_vendor(billCurrency="CAD"), FakeCtx()))  # type: ignore[arg-type]
    assert caught.value.kind == "manual_reconciliation" and vendors.updates == []


def test_an_archived_bill_deletes_an_unlinked_purchase_order_only() -> None:
    orders = FakeResource(
        {"130": {"Id": "130"}, "131": {"Id": "131", "LinkedTxn": [{"TxnId": "9", "TxnType": "Bill"}]}}
    )
    books = FakeBooks(purchase_orders=orders)
    pair.PURCHASE_ORDERS.retire(books, "130")  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="linked") as caught:
        pair.PURCHASE_ORDERS.retire(books, "131")  # type: ignore[arg-type]
    assert orders.deleted == ["130"] and caught.value.kind == "manual_reconciliation"


def test_a_quickbooks_bill_paid_there_is_not_changed_from_bill() -> None:
    bills = FakeResource({"140": {"Id": "140", "TotalAmt": 420.0, "Balance": 20.0}})
    with pytest.raises(RecordError) as caught:
        pair.BILLS.update(FakeBooks(bills=bills), "140", {"DocNumber": "CLH-3301"})  # type: ignore[arg-type]
    assert caught.value.kind == "manual_reconciliation" and bills.updates == []
