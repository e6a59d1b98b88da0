"""Three small paginators, each a tiny state machine with the same contract, and the guard that keeps them finite.

``init_request`` sets the first page's query, ``update_state`` reads a page, ``has_next_page``
decides, ``update_request`` moves the query to the next page. The :class:`ApiClient` drives them.

A vendor's pager can misbehave: hand out a cursor it already gave, ignore ``page`` and answer the
first page forever, or keep raising its page count. :class:`PageGuard` watches every loop and stops
it with a :class:`~airflow_provider_mlconnector.exceptions.PagingError` instead of looping or
returning a row twice:

* a cursor that comes back -> stop before following it;
* a non-empty page equal to the previous one -> stop before yielding it;
* more pages than the vendor's first answer announced (``pages``, or ``total`` / page size) plus
  :func:`allowed_pages`'s margin for records created while paging -> stop;
* no count at all -> stop after :data:`MAX_PAGES`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from airflow_provider_mlconnector.exceptions import PagingError

#: Hard ceiling when the vendor announces no count: 10 million rows at 100 per page.
MAX_PAGES = 100_000
#: Pages beyond the announced count tolerated for records created while paging: a tenth, at least two.
MARGIN = 0.1
MIN_MARGIN = 2


def allowed_pages(announced: int | None) -> int:
    """How many pages a loop may read when the vendor's first answer announced ``announced`` pages."""
    if announced is None:
        return MAX_PAGES
    return announced + max(MIN_MARGIN, math.ceil(announced * MARGIN))


class Paginator(ABC):
    """The paginator contract (after dlt's ``BasePaginator``)."""

    has_next_page: bool = True

    @abstractmethod
    def init_request(self, params: dict[str, Any]) -> None: ...

    @abstractmethod
    def update_state(self, payload: Any, records: list[Any]) -> None: ...

    @abstractmethod
    def update_request(self, params: dict[str, Any]) -> None: ...

    def next_cursor(self) -> str | None:
        """The opaque position the next request asks for (cursor paging), which must never repeat."""
        return None

    def announced_pages(self) -> int | None:
        """How many pages the vendor said there are, when the last page said so."""
        return None


def _pages_for(total: int | None, size: int) -> int | None:
    return None if total is None else math.ceil(total / max(1, size))


class PageNumberPaginator(Paginator):
    """``page=1,2,...`` with a page size; stops at ``total_pages`` when known, else on a short page.

    :param total_pages: reads the page count from a payload (FreshBooks ``pages``), or None.
    :param total_records: reads the record count instead (pages = total / size), or None.
    """

    def __init__(
        self,
        *,
        page_param: str = "page",
        size_param: str = "per_page",
        size: int = 100,
        first_page: int = 1,
        total_pages: Callable[[Any], int | None] | None = None,
        total_records: Callable[[Any], int | None] | None = None,
    ) -> None:
        self.page_param = page_param
        self.size_param = size_param
        self.size = size
        self.page = first_page
        self.first_page = first_page
        self.total_pages = total_pages
        self.total_records = total_records
        self._pages: int | None = None

    def init_request(self, params: dict[str, Any]) -> None:
        params[self.page_param] = self.page
        params[self.size_param] = self.size

    def update_state(self, payload: Any, records: list[Any]) -> None:
        self._pages = None
        if payload is not None and self.total_pages is not None:
            self._pages = self.total_pages(payload)
        elif payload is not None and self.total_records is not None:
            self._pages = _pages_for(self.total_records(payload), self.size)
        if self._pages is not None:
            self.has_next_page = self.page - self.first_page + 1 < self._pages
        else:
            self.has_next_page = len(records) >= self.size

    def update_request(self, params: dict[str, Any]) -> None:
        self.page += 1
        params[self.page_param] = self.page

    def announced_pages(self) -> int | None:
        return self._pages


class OffsetPaginator(Paginator):
    """``offset``/``limit`` style (QuickBooks STARTPOSITION is 1-based: ``first_offset=1``).

    :param total_records: reads the record count from a payload, or None (then a short page ends).
    """

    def __init__(
        self,
        *,
        offset_param: str = "offset",
        size_param: str = "limit",
        size: int = 100,
        first_offset: int = 0,
        total_records: Callable[[Any], int | None] | None = None,
    ) -> None:
        self.offset_param = offset_param
        self.size_param = size_param
        self.size = size
        self.offset = first_offset
        self.total_records = total_records
        self._pages: int | None = None

    def init_request(self, params: dict[str, Any]) -> None:
        params[self.offset_param] = self.offset
        params[self.size_param] = self.size

    def update_state(self, payload: Any, records: list[Any]) -> None:
        if payload is not None and self.total_records is not None:
            self._pages = _pages_for(self.total_records(payload), self.size)
        self.has_next_page = len(records) >= self.size

    def update_request(self, params: dict[str, Any]) -> None:
        self.offset += self.size
        params[self.offset_param] = self.offset

    def announced_pages(self) -> int | None:
        return self._pages


class CursorPaginator(Paginator):
    """An opaque next-page token read from the payload (BILL ``nextPage``).

    Ends only when the token is absent: an empty page that still carries a token means continue.

    :param size: the page size asked for (only used with ``total_records``).
    :param total_records: reads the record count from a payload, or None.
    """

    def __init__(
        self,
        *,
        token: Callable[[Any], str | None],
        token_param: str = "page",
        size: int | None = None,
        total_records: Callable[[Any], int | None] | None = None,
    ) -> None:
        self.token = token
        self.token_param = token_param
        self.size = size
        self.total_records = total_records
        self.next_token: str | None = None
        self._pages: int | None = None

    def init_request(self, params: dict[str, Any]) -> None:
        params.pop(self.token_param, None)

    def update_state(self, payload: Any, records: list[Any]) -> None:
        self.next_token = self.token(payload) if payload is not None else None
        self.has_next_page = bool(self.next_token)
        if payload is not None and self.total_records is not None and self.size:
            self._pages = _pages_for(self.total_records(payload), self.size)

    def update_request(self, params: dict[str, Any]) -> None:
        params[self.token_param] = self.next_token

    def next_cursor(self) -> str | None:
        return self.next_token

    def announced_pages(self) -> int | None:
        return self._pages


class PageGuard:
    """Watches one paging loop; raises :class:`PagingError` before it could loop or repeat a row.

    :param system: the vendor, for the error.
    :param what: the call being paged (``GET /v3/bills``), for the error.
    """

    def __init__(self, system: str, what: str, paginator: Paginator) -> None:
        self.system = system
        self.what = what
        self.paginator = paginator
        self.pages = 0
        self._previous: list[Any] = []
        self._cursors: set[str] = set()
        self._announced: int | None = None

    def admit(self, records: list[Any]) -> None:
        """Check a page before its rows are handed out."""
        self.pages += 1
        if records and records == self._previous:
            raise self._error(f"page {self.pages} is identical to page {self.pages - 1} (the pager did not move)")
        self._previous = records

    def before_next(self) -> None:
        """Check the paginator's next position before it is requested."""
        if self._announced is None:
            self._announced = self.paginator.announced_pages()
        if self.pages >= allowed_pages(self._announced):
            if self._announced is None:
                raise self._error(f"more than {MAX_PAGES} pages without a page count")
            raise self._error(
                f"page {self.pages + 1} requested: more than the {self._announced} pages the first answer "
                f"announced, beyond the margin for records created while paging"
            )
        cursor = self.paginator.next_cursor()
        if cursor is not None:
            if cursor in self._cursors:
                raise self._error(f"cursor {cursor[:40]!r} came back after page {self.pages}")
            self._cursors.add(cursor)

    def _error(self, reason: str) -> PagingError:
        return PagingError(
            f"{self.what}: {reason}; stopped instead of looping, no row was returned twice", system=self.system
        )
