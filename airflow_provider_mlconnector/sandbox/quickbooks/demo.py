"""The demo story in QuickBooks Online: Brightside Marketing's books (realm 9341453050001234).

The chart of accounts the BILL -> QuickBooks sync maps onto by account number (AcctNum), the
A/P account purchase orders post to, and one vendor that already exists ("Adobe Inc.") so the sync
must match it by DisplayName instead of creating a duplicate. A customer and an employee share the
DisplayName namespace with vendors (6240 on a clash): BILL's vendor "Harbor Street Bakery" meets the
customer of that name. There is no "Team Offsite & Events" account (BILL has 6070: its bill must
dead-letter as unmapped) and multicurrency is off (BILL's CAD vendor Maple Print Co. is refused). No
purchase orders exist yet.
"""

from __future__ import annotations

from typing import Any

REALM_ID = "9341453050001234"
_CREATED = {"CreateTime": "2026-09-14T09:12:40-07:00", "LastUpdatedTime": "2026-09-14T09:12:40-07:00"}


def _account(acct_id: str, num: str, name: str, acct_type: str, sub_type: str, classification: str) -> dict[str, Any]:
    return {
        "Id": acct_id,
        "Name": name,
        "AcctNum": num,
        "AccountType": acct_type,
        "AccountSubType": sub_type,
        "Classification": classification,
        "FullyQualifiedName": name,
        "SubAccount": False,
        "CurrentBalance": 0,
        "CurrentBalanceWithSubAccounts": 0,
        "MetaData": dict(_CREATED),
    }


def fixture() -> dict[str, Any]:
    return {
        "realm_id": REALM_ID,
        "company": {
            "CompanyName": "Brightside Marketing",
            "LegalName": "Brightside Marketing LLC",
            "CompanyAddr": {
                "Line1": "550 Howard Street, Suite 400",
                "City": "San Francisco",
                "CountrySubDivisionCode": "CA",
                "PostalCode": "94105",
                "Country": "US",
            },
            "Email": {"Address": "books@brightsidemarketing.com"},
        },
        "accounts": [
            _account("35", "1000", "Operating Checking", "Bank", "Checking", "Asset"),
            _account("33", "2000", "Accounts Payable (A/P)", "Accounts Payable", "AccountsPayable", "Liability"),
            _account("58", "6010", "Contract Labor", "Expense", "CostOfLabor", "Expense"),
            _account("59", "6020", "Software & Subscriptions", "Expense", "OtherMiscellaneousServiceCost", "Expense"),
            _account("60", "6030", "Advertising & Promotion", "Expense", "AdvertisingPromotional", "Expense"),
            _account("61", "6040", "Office Supplies", "Expense", "OfficeGeneralAdministrativeExpenses", "Expense"),
        ],
        "vendors": [
            {
                "Id": "56",
                "DisplayName": "Adobe Inc.",
                "CompanyName": "Adobe Inc.",
                "PrintOnCheckName": "Adobe Inc.",
                "PrimaryEmailAddr": {"Address": "billing@adobe.com"},
                "BillAddr": {
                    "Line1": "345 Park Avenue",
                    "City": "San Jose",
                    "CountrySubDivisionCode": "CA",
                    "PostalCode": "95110",
                    "Country": "US",
                },
                "MetaData": dict(_CREATED),
            },
        ],
        "customers": [
            {"Id": "12", "DisplayName": "Harbor Street Bakery", "CompanyName": "Harbor Street Bakery"},
        ],
        "employees": [
            {"Id": "70", "DisplayName": "Dana Whitfield", "GivenName": "Dana", "FamilyName": "Whitfield"},
        ],
        "items": [
            {
                "Id": "20",
                "Name": "Freelance Design Hours",
                "Type": "Service",
                "ExpenseAccountRef": {"value": "58", "name": "Contract Labor"},
                "PurchaseCost": 85,
            },
            {"Id": "21", "Name": "Stock Photo Credits", "Type": "NonInventory"},
        ],
    }
