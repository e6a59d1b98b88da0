"""A vendor's collections, declared once on its hook and used the same way for every vendor.

A hook declares each collection as one class attribute: a :class:`Resource` of the vendor's
*flavour*, a small subclass next to the hook that knows the vendor's wire format::

    class FreshBooksHook(MLConnectorHook):
        bills = Classic("bills/bills", one="bill", many="bills", delete="soft", filters=("vendorid", "ids"))

Callers then use every vendor alike::

    hook.bills.list(vendorid=5)           every record of every page, each once   -> Iterator[dict]
    hook.bills.get(bill_id)               one record                               -> dict
    hook.bills.find(bill_number="A-1")    the record whose fields equal the filters -> dict | None
    hook.bills.create(body)               the record as the vendor stored it       -> dict
    hook.bills.update(bill_id, changes)   only the fields to change                -> dict
    hook.bills.delete(bill_id)            by the vendor's own rule (soft, HTTP...) -> dict | None
    hook.bills.archive(bill_id), hook.bills.restore(bill_id)   where the vendor has them

This base class owns what is the same for every vendor:

* which verbs a collection has (a read-only one refuses ``create``);
* which filters the vendor honours: an unknown one is refused here, because FreshBooks and others
  silently ignore a filter they do not know and would return everything;
* an empty ``in`` list matches nothing (a lenient server would read it as "no filter"), and one
  longer than the collection's ``in_limit`` is sent as several queries;
* ``{placeholders}`` in paths, filled from keyword arguments (``order_id=``) or, for tenant ids,
  by the flavour (FreshBooks ``account_id``);
* rows de-duplicated by id: a record that moves between pages while paging is returned once;
* :meth:`Resource.find`'s exact match, which also guards against prefix or case-insensitive
  matching server-side, and the oldest record when the vendor holds duplicates.

A flavour implements the ``_rows``/``_get``/``_create``/``_update``/``_delete``/``_archive``
methods (paths, envelopes, paging, how a delete or an archive is sent) and may add keyword
options to a verb (``include=``, ``request_id=``) where its vendor has them.
"""

from __future__ import annotations

import copy
import logging
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import Enum
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import quote

log = logging.getLogger(__name__)

Record = dict[str, Any]
RecordId = str | int
VERBS = frozenset({"list", "get", "create", "update", "delete", "archive", "restore"})
#: ``verbs=`` of a collection the API only lets us read.
READ_ONLY = "list get"
#: ``verbs=`` of a collection that can be listed but has no single-record read.
LIST_ONLY = "list"

H = TypeVar("H")


class Resource(Generic[H]):
    """One collection of a vendor API, declared on a hook class; bound to a hook when read from it.

    :param path: the collection's path, relative to what the flavour puts in front; may hold
        ``{placeholders}`` (``orders/{order_id}/products``).
    :param id_field: the record field holding its id (de-duplication, ``find``).
    :param verbs: space-separated verbs the API offers besides ``delete`` (see ``delete``).
    :param delete: how the vendor deletes (the flavour's rule: ``"soft"``, ``"http"``...), or
        None when records cannot be deleted.
    :param filters: the filters the vendor documents for this collection, by their wire name
        (space-separated, or an iterable).
    :param order: query parameters asking for a stable order, where the API has one.
    :param in_limit: the most values one "any of" filter may carry (query-string length); a
        longer list is sent as several queries, their rows merged.
    """

    #: the record field telling the oldest of several matches apart in :meth:`find`.
    created_field: ClassVar[str | None] = None

    def __init__(
        self,
        path: str,
        *,
        id_field: str = "id",
        verbs: str = "list get create update",
        delete: str | None = None,
        filters: str | Iterable[str] = (),
        order: Mapping[str, str] | None = None,
        in_limit: int | None = None,
    ) -> None:
        self.path = path
        self.id_field = id_field
        self.delete_rule = delete
        self.verbs = frozenset(verbs.split()) | ({"delete"} if delete else set())
        unknown = self.verbs - VERBS
        if unknown:
            raise ValueError(f"unknown verbs {sorted(unknown)}; a resource knows {sorted(VERBS)}")
        self.filters = frozenset(filters.split() if isinstance(filters, str) else filters)
        self.order = dict(order or {})
        self.in_limit = in_limit
        self.name = path
        self.system = "?"
        self._hook: H | None = None

    # ------------------------------------------------------------------ declaration and binding

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name
        self.system = str(getattr(owner, "conn_type", owner.__name__))

    def __get__(self, hook: object | None, owner: type[Any] | None = None) -> Self:
        if hook is None:
            return self
        bound = copy.copy(self)
        bound._hook = hook  # type: ignore[assignment]  # the flavour's H is the class it is declared on
        # Cached on the instance like a cached_property: later reads skip this descriptor.
        hook.__dict__[self.name] = bound
        return bound

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    @property
    def hook(self) -> H:
        """The hook this collection is bound to."""
        if self._hook is None:
            raise TypeError(f"{self.label} is a declaration: use it on a hook instance (hook.{self.name})")
        return self._hook

    @property
    def label(self) -> str:
        return f"{self.system} {self.name}"

    # ------------------------------------------------------------------ the verbs

    def list(self, **filters: Any) -> Iterator[Record]:
        """Every record matching ``filters`` (documented filters only), page after page, each once.

        :param filters: filter name (wire spelling) -> value; a list means "any of". Path
            placeholders (``order_id=``) are given here too.
        """
        return self._listing(filters)

    def get(self, record_id: RecordId, **path: Any) -> Record:
        """One record by id.

        :param record_id: its id.
        :param path: values of the path's placeholders.
        """
        self._allow("get")
        return self._get(self._member_path(record_id, path))

    def find(self, *, matching: Callable[[Record], bool] | None = None, **filters: Any) -> Record | None:
        """The record whose fields equal ``filters``, or None; the oldest when the vendor holds several.

        :param matching: a test on fields the vendor cannot filter by (BILL's ``invoice.invoiceNumber``).
        :param filters: as for :meth:`list`; every filter naming a field of the record must match it exactly.
        """
        matches = [
            record
            for record in self.list(**filters)
            if _carries(record, filters) and (matching is None or matching(record))
        ]
        if not matches:
            return None
        if len(matches) > 1:
            log.warning(
                "%s: %d records match %s (%s); using the oldest",
                self.label,
                len(matches),
                sorted(filters),
                ", ".join(str(m.get(self.id_field)) for m in matches),
            )
            if self.created_field:
                field = self.created_field
                return min(matches, key=lambda m: (str(m.get(field) or ""), str(m.get(self.id_field))))
        return matches[0]

    def create(self, body: Mapping[str, Any], **path: Any) -> Record:
        """Create a record; returns it as the vendor stored it.

        A lost answer raises ``WriteOutcomeUnknownError``: :meth:`find` the record before creating again.

        :param body: the record's fields.
        :param path: values of the path's placeholders.
        """
        self._allow("create")
        return self._create(self._collection_path(path), body)

    def update(self, record_id: RecordId, changes: Mapping[str, Any], **path: Any) -> Record:
        """Change some fields of a record; returns the record as the vendor stored it.

        :param record_id: its id.
        :param changes: only the fields to change.
        :param path: values of the path's placeholders.
        """
        self._allow("update")
        return self._update(self._member_path(record_id, path), changes)

    def delete(self, record_id: RecordId, **path: Any) -> Record | None:
        """Delete a record the vendor's way (soft delete, HTTP DELETE...); the record, when the vendor returns it.

        :param record_id: its id.
        :param path: values of the path's placeholders.
        """
        self._allow("delete")
        return self._delete(self._member_path(record_id, path))

    def archive(self, record_id: RecordId, **path: Any) -> Record:
        """Archive a record (hidden from normal use, kept, restorable).

        :param record_id: its id.
        :param path: values of the path's placeholders.
        """
        self._allow("archive")
        return self._archive(self._member_path(record_id, path), archived=True)

    def restore(self, record_id: RecordId, **path: Any) -> Record:
        """Bring an archived (or soft-deleted) record back.

        :param record_id: its id.
        :param path: values of the path's placeholders.
        """
        self._allow("restore")
        return self._archive(self._member_path(record_id, path), archived=False)

    # ------------------------------------------------------------------ what flavours implement

    def _rows(self, path: str, filters: dict[str, Any], **options: Any) -> Iterable[Record]:
        """Every row of every page of ``path`` with ``filters`` (already checked)."""
        raise NotImplementedError

    def _get(self, path: str) -> Record:
        raise NotImplementedError

    def _create(self, path: str, body: Mapping[str, Any]) -> Record:
        raise NotImplementedError

    def _update(self, path: str, changes: Mapping[str, Any]) -> Record:
        raise NotImplementedError

    def _delete(self, path: str) -> Record | None:
        raise NotImplementedError

    def _archive(self, path: str, *, archived: bool) -> Record:
        raise NotImplementedError

    def _tenant(self, name: str) -> Any:
        """The value of a path placeholder the hook knows (a tenant id), or TypeError."""
        raise TypeError(f"{self.label} needs {name}=... (a placeholder of its path {self.path!r})")

    # ------------------------------------------------------------------ shared plumbing

    def _listing(self, filters: Mapping[str, Any], **options: Any) -> Iterator[Record]:
        """:meth:`list` with the flavour's ``options``: checks, then de-duplicated rows."""
        self._allow("list")
        remaining = dict(filters)
        path = self._collection_path(self._take_placeholders(remaining))
        unknown = sorted(set(remaining) - self.filters)
        if unknown:
            honoured = ", ".join(sorted(self.filters)) or "none"
            raise TypeError(f"{self.label} cannot be filtered by {', '.join(unknown)} (documented filters: {honoured})")
        if any(_is_empty_choice(value) for value in remaining.values()):
            return iter(())
        return self._unique(row for query in self._queries(remaining) for row in self._rows(path, query, **options))

    def _queries(self, filters: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """``filters`` as one query, or several when a choice is longer than :attr:`in_limit`."""
        limit = self.in_limit
        long = [name for name, value in filters.items() if limit and _is_choice(value) and len(value) > limit]
        if not long or not limit:
            yield filters
            return
        if len(long) > 1:
            raise ValueError(f"{self.label}: only one filter may list more than {limit} values ({', '.join(long)})")
        values = sorted({str(value) for value in filters[long[0]]})
        for start in range(0, len(values), limit):
            yield {**filters, long[0]: values[start : start + limit]}

    def _allow(self, verb: str) -> None:
        if verb not in self.verbs:
            raise TypeError(f"{self.label} cannot {verb}: the API offers {', '.join(sorted(self.verbs))}")

    def _take_placeholders(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {name: kwargs.pop(name) for name in _placeholders(self.path) if name in kwargs}

    def _fill(self, template: str, params: Mapping[str, Any]) -> str:
        values = {
            name: quote(str(params[name]), safe="") if name in params else self._tenant(name)
            for name in _placeholders(template)
        }
        unexpected = set(params) - set(values)
        if unexpected:
            raise TypeError(f"{self.label} has no path placeholder {', '.join(sorted(unexpected))}")
        return template.format(**values)

    def _collection_path(self, params: Mapping[str, Any]) -> str:
        return self._fill(self.path, params)

    def _member_path(self, record_id: RecordId, params: Mapping[str, Any]) -> str:
        return f"{self._collection_path(params)}/{quote(str(record_id), safe='')}"

    def _unique(self, rows: Iterable[Record]) -> Iterator[Record]:
        seen: set[str] = set()
        repeats = 0
        for row in rows:
            key = row.get(self.id_field)
            if key is not None:
                if str(key) in seen:
                    repeats += 1
                    continue
                seen.add(str(key))
            yield row
        if repeats:
            log.warning(
                "%s: %d rows came twice while paging (records moved between pages); each was returned once",
                self.label,
                repeats,
            )


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def _is_choice(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset))


def _is_empty_choice(value: Any) -> bool:
    return _is_choice(value) and not value


def _same(a: Any, b: Any) -> bool:
    return _normal(a) == _normal(b)


def _normal(value: Any) -> str:
    """One spelling per value, so ``5``, ``"5"`` and ``VisState.DELETED``-like enums compare as the vendor means."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return _normal(value.value)
    return str(value)


def _carries(record: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """Whether every filter that names a field of ``record`` matches it exactly (or is among a list's choices)."""
    for name, wanted in filters.items():
        if name not in record:
            continue  # a filter on something else (ids, a date bound): the vendor applied it
        if isinstance(wanted, (list, tuple, set, frozenset)):
            if not any(_same(record[name], choice) for choice in wanted):
                return False
        elif not _same(record[name], wanted):
            return False
    return True
