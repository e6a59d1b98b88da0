"""Three small paginators, each a tiny state machine with the same four-method contract.

``init_request`` sets the first page's query, ``update_state`` reads a page, ``has_next_page``
decides, ``update_request`` moves the query to the next page. The :class:`ApiClient` drives them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any


class Paginator(ABC):
    """The paginator contract (after dlt's ``BasePaginator``)."""

    has_next_page: bool = True

    @abstractmethod
    def init_request(self, params: dict[str, Any]) -> None: ...

    @abstractmethod
    def update_state(self, payload: Any, records: list[Any]) -> None: ...

    @abstractmethod
    def update_request(self, params: dict[str, Any]) -> None: ...


class PageNumberPaginator(Paginator):
    """``page=1,2,...`` with a page size; stops at ``total_pages`` when known, else on a short page.

    :param total_pages: reads the page count from a payload (FreshBooks ``pages``), or None.
    """

    def __init__(
        self,
        *,
        page_param: str = "page",
        size_param: str = "per_page",
        size: int = 100,
        first_page: int = 1,
        total_pages: Callable[[Any], int | None] | None = None,
    ) -> None:
        self.page_param = page_param
        self.size_param = size_param
        self.size = size
        self.page = first_page
        self.total_pages = total_pages

    def init_request(self, params: dict[str, Any]) -> None:
        params[self.page_param] = self.page
        params[self.size_param] = self.size

    def update_state(self, payload: Any, records: list[Any]) -> None:
        pages = self.total_pages(payload) if (self.total_pages and payload is not None) else None
        if pages is not None:
            self.has_next_page = self.page < pages
        else:
            self.has_next_page = len(records) >= self.size

    def update_request(self, params: dict[str, Any]) -> None:
        self.page += 1
        params[self.page_param] = self.page


class OffsetPaginator(Paginator):
    """``offset``/``limit`` style (QuickBooks STARTPOSITION is 1-based: ``first_offset=1``)."""

    def __init__(
        self, *, offset_param: str = "offset", size_param: str = "limit", size: int = 100, first_offset: int = 0
    ) -> None:
        self.offset_param = offset_param
        self.size_param = size_param
        self.size = size
        self.offset = first_offset

    def init_request(self, params: dict[str, Any]) -> None:
        params[self.offset_param] = self.offset
        params[self.size_param] = self.size

    def update_state(self, payload: Any, records: list[Any]) -> None:
        self.has_next_page = len(records) >= self.size

    def update_request(self, params: dict[str, Any]) -> None:
        self.offset += self.size
        params[self.offset_param] = self.offset


class CursorPaginator(Paginator):
    """An opaque next-page token read from the payload (BILL ``nextPage``).

    Ends only when the token is absent: an empty page that still carries a token means continue.
    """

    def __init__(self, *, token: Callable[[Any], str | None], token_param: str = "page") -> None:
        self.token = token
        self.token_param = token_param
        self.next_token: str | None = None

    def init_request(self, params: dict[str, Any]) -> None:
        params.pop(self.token_param, None)

    def update_state(self, payload: Any, records: list[Any]) -> None:
        self.next_token = self.token(payload) if payload is not None else None
        self.has_next_page = bool(self.next_token)

    def update_request(self, params: dict[str, Any]) -> None:
        params[self.token_param] = self.next_token
