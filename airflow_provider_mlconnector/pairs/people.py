"""One person = one FreshBooks bill vendor, whichever pair meets them first.

Shared by every pair that books money to a person in FreshBooks (Expensify -> FreshBooks bills an
employee's reimbursable expenses; BambooHR -> FreshBooks keeps employees as bill vendors). Both
must find the *same* bill vendor, so the rule lives here, once:

* **The natural key is the e-mail**, compared case-insensitively: :func:`person_key` =
  ``email.strip().casefold()``. Pairs use it as their entity's ``natural_key``, so the engine's
  fenced claims and its recovery after a lost answer work from the e-mail alone.
* **Find before creating**: :func:`find_person_vendor` (one key) and :func:`person_vendors_by_key`
  (a batch index) look the e-mail up in FreshBooks' ``primary_contact_email`` of every bill vendor
  (FreshBooks documents no search on bill vendors, so the list is read, 100 per page). A vendor
  someone typed by hand with the same e-mail is adopted, never doubled. When FreshBooks holds
  several with that e-mail, the active one with the lowest id wins (archived ones only when no
  active one exists), so both pairs always pick the same.
* **Never created twice at once**: both pairs declare the entity with ``shared=SharedKey(SHARED_KEY)``.
  Their plans look the e-mail up independently, so two runs that both find no vendor for a new
  person would both create one; the engine also claims the e-mail itself across pairs (see
  :class:`~airflow_provider_mlconnector.operators.pair.SharedKey`): the second pair waits while
  the first creates, then links to that vendor.
* **The payload**: :func:`person_vendor_payload` builds the bill vendor of a person: name, e-mail,
  first and last name as the primary contact, the booking currency, and a note saying it is a
  person (so an accountant tells employees from suppliers).

Usage in a pair::

    from airflow_provider_mlconnector.pairs import people

    Entity("person", ..., transform=lambda r, ctx: people.person_vendor_payload(r["email"], first_name=...),
           natural_key=lambda record, payload: people.person_key(payload["primary_contact_email"]),
           index=people.person_vendors_by_key, find=people.find_person_vendor,
           create=lambda fb, payload: fb.bill_vendors.create(payload),
           update=lambda fb, vendor_id, payload: fb.bill_vendors.update(vendor_id, payload),
           target_id=people.vendor_id, shared=SharedKey(people.SHARED_KEY))

:func:`staff_ids_by_key` maps the same key to a FreshBooks staff id (expense owner), when known.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_mlconnector.exceptions import MappingError

if TYPE_CHECKING:
    from airflow_provider_mlconnector.hooks.freshbooks import FreshBooksHook

Record = dict[str, Any]

ACTIVE, DELETED, ARCHIVED = 0, 1, 2
#: the cross-pair name of a person's bill vendor, claimed by e-mail (``Entity.shared``).
SHARED_KEY = "freshbooks_person_vendor"
#: the bill vendor note of a person (FreshBooks has no "employee" flag on bill vendors).
PERSON_NOTE = "Employee (expense reimbursements); kept by ml-connector, matched by e-mail"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def person_key(email: object) -> str:
    """The natural key of a person: the e-mail, trimmed and case-folded.

    :raises MappingError: (kind ``manual_reconciliation``) when there is no usable e-mail: without
        it the person cannot be matched, and guessing would create a second vendor.
    """
    text = str(email or "").strip()
    if not _EMAIL.match(text):
        raise MappingError(
            f"the person has no usable e-mail ({text or 'none'}): a bill vendor is matched by e-mail only",
            kind="manual_reconciliation",
        )
    return text.casefold()


def display_name(email: str, first_name: str = "", last_name: str = "") -> str:
    """``First Last``; from the e-mail's ``first.last`` part when the source has no names (Expensify)."""
    name = f"{first_name.strip()} {last_name.strip()}".strip()
    if name:
        return name
    local = email.split("@", 1)[0]
    parts = [p for p in re.split(r"[._-]+", local) if p and not p.isdigit()]
    return " ".join(p.capitalize() for p in parts) or email


def is_person_vendor(vendor: Mapping[str, Any]) -> bool:
    """Whether a FreshBooks bill vendor is a person kept by these pairs (its note, role suffix aside)."""
    return str(vendor.get("note") or "").startswith(PERSON_NOTE)


def person_vendor_payload(
    email: str,
    *,
    first_name: str = "",
    last_name: str = "",
    currency_code: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Record:
    """The FreshBooks bill vendor of one person (request shape of ``bill_vendors.create``).

    :param email: the person's e-mail (the match key; stored as ``primary_contact_email`` as given).
    :param first_name: optional; with ``last_name`` the vendor name (else derived from the e-mail).
    :param last_name: optional.
    :param currency_code: the currency the person's bills are booked in (FreshBooks default USD).
    :param extra: further bill vendor fields a pair owns (phone, address...).
    """
    address = email.strip()
    person_key(address)  # refuses an unusable e-mail before anything else
    payload: Record = {
        "vendor_name": display_name(address, first_name, last_name)[:100],
        "primary_contact_email": address,
        "primary_contact_first_name": first_name.strip() or None,
        "primary_contact_last_name": last_name.strip() or None,
        "language": "en",
        "is_1099": False,
        "note": PERSON_NOTE,
    }
    if currency_code:
        payload["currency_code"] = currency_code.upper()
    payload.update(extra or {})
    return payload


def vendor_id(vendor: Mapping[str, Any]) -> str:
    """A bill vendor's id (``vendorid``; FreshBooks has no ``id`` on bill vendors)."""
    return str(vendor.get("vendorid") or vendor["id"])


def vendor_email_key(vendor: Mapping[str, Any]) -> str | None:
    """The person key of a bill vendor, or None when it has no usable contact e-mail."""
    try:
        return person_key(vendor.get("primary_contact_email"))
    except MappingError:
        return None


def _preference(vendor: Mapping[str, Any]) -> tuple[int, int]:
    state = int(vendor.get("vis_state") or ACTIVE)
    return (0 if state == ACTIVE else 1, int(vendor_id(vendor)))


def index_person_vendors(vendors: Iterable[Mapping[str, Any]]) -> dict[str, Record]:
    """Bill vendors by person key: active before archived, then the lowest id; deleted ones never."""
    found: dict[str, Record] = {}
    for vendor in sorted((v for v in vendors if int(v.get("vis_state") or 0) != DELETED), key=_preference):
        key = vendor_email_key(vendor)
        if key is not None and key not in found:
            found[key] = dict(vendor)
    return found


def person_vendors_by_key(freshbooks: FreshBooksHook, payloads: list[Record] | None = None) -> dict[str, Record]:
    """Every FreshBooks bill vendor that has a contact e-mail, by person key (one paged listing)."""
    return index_person_vendors(freshbooks.bill_vendors.list())


def find_person_vendor(freshbooks: FreshBooksHook, key: str) -> Record | None:
    """The bill vendor of the person with this key (:func:`person_key`), or None."""
    return person_vendors_by_key(freshbooks).get(key)


def staff_ids_by_key(freshbooks: FreshBooksHook) -> dict[str, str]:
    """FreshBooks staff ids (an expense's ``staffid``) by person key; staff without e-mail are left out."""
    staff: dict[str, str] = {}
    for member in freshbooks.staff.list():
        if int(member.get("vis_state") or 0) == DELETED:
            continue
        try:
            key = person_key(member.get("email"))
        except MappingError:
            continue
        staff.setdefault(key, str(member.get("id") or member["userid"]))
    return staff


__all__ = [
    "PERSON_NOTE",
    "SHARED_KEY",
    "display_name",
    "find_person_vendor",
    "index_person_vendors",
    "is_person_vendor",
    "person_key",
    "person_vendor_payload",
    "person_vendors_by_key",
    "staff_ids_by_key",
    "vendor_email_key",
    "vendor_id",
]
