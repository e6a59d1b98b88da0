"""The QuickBooks query language subset: parse and evaluate ``SELECT`` statements.

Grammar (after Intuit's data-queries page)::

    SELECT * | count(*) FROM Entity
        [WHERE prop op value [AND prop op value ...]]
        [ORDERBY prop [ASC|DESC] [, prop [ASC|DESC]]]
        [STARTPOSITION n] [MAXRESULTS n]

Operators ``=, <, >, <=, >=, IN, LIKE`` (``%`` wildcards only); no OR, no projections. Keywords
are case-insensitive, entity and property names case-sensitive. Strings are single-quoted with
``\\'`` escaping a quote (the escape rule is UNCONFIRMED; it is the one Intuit's SDKs use).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:\\.|[^'\\])*')
      | (?P<number>-?\d+(?:\.\d+)?)(?![\w.])
      | (?P<op><=|>=|!=|=|<|>|\(|\)|,|\*)
      | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)


class QueryError(Exception):
    """A query the service refuses. ``kind`` is ``parse`` (code 4000) or ``validation`` (4001)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Condition:
    prop: str
    op: str
    value: Any  # str | Decimal | bool | list of those


@dataclass
class Query:
    entity: str
    count: bool = False
    where: list[Condition] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (prop, descending)
    start_position: int = 1
    max_results: int | None = None


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise QueryError("parse", f'QueryParserError: Encountered " "{text[pos : pos + 10]}" at column {pos + 1}')
        kind = match.lastgroup or ""
        tokens.append(_Tok(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise QueryError("parse", 'QueryParserError: Encountered "<EOF>"')
        self.i += 1
        return tok

    def keyword(self, *words: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.text.upper() in words:
            self.i += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            tok = self.peek()
            found = tok.text if tok else "<EOF>"
            raise QueryError("parse", f'QueryParserError: Encountered "{found}"; expected {word}')

    def expect_op(self, op: str) -> None:
        tok = self.take()
        if tok.kind != "op" or tok.text != op:
            raise QueryError("parse", f'QueryParserError: Encountered "{tok.text}" at column {tok.pos + 1}')

    def integer(self) -> int:
        tok = self.take()
        if tok.kind != "number" or "." in tok.text:
            raise QueryError("parse", f'QueryParserError: expected an integer, found "{tok.text}"')
        return int(tok.text)

    def value(self) -> Any:
        tok = self.take()
        if tok.kind == "string":
            return re.sub(r"\\(.)", r"\1", tok.text[1:-1])
        if tok.kind == "number":
            return Decimal(tok.text)
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            return tok.text.lower() == "true"
        raise QueryError("parse", f'QueryParserError: Encountered "{tok.text}" at column {tok.pos + 1}')

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        count = False
        tok = self.take()
        if tok.kind == "word" and tok.text.lower() == "count":
            self.expect_op("(")
            self.expect_op("*")
            self.expect_op(")")
            count = True
        elif not (tok.kind == "op" and tok.text == "*"):
            # Projections are not supported by QuickBooks.
            raise QueryError("parse", f'QueryParserError: Encountered "{tok.text}"; only * or count(*)')
        self.expect_keyword("FROM")
        entity = self.take()
        if entity.kind != "word":
            raise QueryError("parse", f'QueryParserError: Encountered "{entity.text}"')
        query = Query(entity=entity.text, count=count)
        if self.keyword("WHERE"):
            query.where.append(self.condition())
            while self.keyword("AND"):
                query.where.append(self.condition())
            if self.keyword("OR"):
                raise QueryError("parse", "QueryParserError: OR is not supported")
        if self.keyword("ORDERBY", "ORDER"):
            if self.tokens[self.i - 1].text.upper() == "ORDER":
                self.expect_keyword("BY")
            while True:
                prop = self.take()
                if prop.kind != "word":
                    raise QueryError("parse", f'QueryParserError: Encountered "{prop.text}"')
                descending = False
                if self.keyword("DESC"):
                    descending = True
                else:
                    self.keyword("ASC")
                query.order_by.append((prop.text, descending))
                nxt = self.peek()
                if nxt is None or not (nxt.kind == "op" and nxt.text == ","):
                    break
                self.take()
        while self.peek() is not None:
            if self.keyword("STARTPOSITION"):
                query.start_position = self.integer()
            elif self.keyword("MAXRESULTS"):
                query.max_results = self.integer()
            else:
                tok = self.take()
                raise QueryError("parse", f'QueryParserError: Encountered "{tok.text}" at column {tok.pos + 1}')
        if query.start_position < 1:
            raise QueryError("validation", "QueryValidationError: STARTPOSITION must be 1 or more")
        return query

    def condition(self) -> Condition:
        prop = self.take()
        if prop.kind != "word":
            raise QueryError("parse", f'QueryParserError: Encountered "{prop.text}" at column {prop.pos + 1}')
        if self.keyword("IN"):
            self.expect_op("(")
            values = [self.value()]
            while True:
                tok = self.take()
                if tok.kind == "op" and tok.text == ")":
                    break
                if not (tok.kind == "op" and tok.text == ","):
                    raise QueryError("parse", f'QueryParserError: Encountered "{tok.text}" at column {tok.pos + 1}')
                values.append(self.value())
            return Condition(prop.text, "IN", values)
        if self.keyword("LIKE"):
            return Condition(prop.text, "LIKE", self.value())
        op = self.take()
        if op.kind != "op" or op.text not in ("=", "<", ">", "<=", ">="):
            raise QueryError("parse", f'QueryParserError: Encountered "{op.text}" at column {op.pos + 1}')
        return Condition(prop.text, op.text, self.value())


def parse(text: str) -> Query:
    return _Parser(text).parse()


# ---------------------------------------------------------------------- evaluation


def lookup(record: Mapping[str, Any], prop: str) -> Any:
    """A dotted property (``MetaData.LastUpdatedTime``); a reference compares by its ``value``."""
    current: Any = record
    for part in prop.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    if isinstance(current, Mapping) and "value" in current:
        return current["value"]
    return current


def known_property(prop: str, schema: Sequence[str]) -> bool:
    """Whether ``prop`` (or its first dotted segment) is a property of the entity."""
    return prop.split(".")[0] in schema


def as_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        return None
    text = value.replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _comparable(left: Any, right: Any, fold_case: bool) -> tuple[Any, Any] | None:
    if left is None:
        return None
    if isinstance(right, bool) or isinstance(left, bool):
        return (bool(left), bool(right)) if isinstance(left, bool) and isinstance(right, bool) else None
    left_time, right_time = as_time(left), as_time(right)
    if left_time is not None and right_time is not None:
        return left_time, right_time
    if isinstance(left, (int, float, Decimal)) or isinstance(right, Decimal):
        try:
            return Decimal(str(left)), Decimal(str(right))
        except InvalidOperation:
            return None
    a, b = str(left), str(right)
    return (a.lower(), b.lower()) if fold_case else (a, b)


def matches(record: Mapping[str, Any], cond: Condition, *, fold_case: bool) -> bool:
    left = lookup(record, cond.prop)
    if cond.op == "IN":
        return any(matches(record, Condition(cond.prop, "=", v), fold_case=fold_case) for v in cond.value)
    if cond.op == "LIKE":
        if left is None:
            return False
        pattern = "^" + ".*".join(re.escape(part) for part in str(cond.value).split("%")) + "$"
        return re.match(pattern, str(left), re.IGNORECASE if fold_case else 0) is not None
    pair = _comparable(left, cond.value, fold_case)
    if pair is None:
        return False
    a, b = pair
    if cond.op == "=":
        return bool(a == b)
    if cond.op == "<":
        return bool(a < b)
    if cond.op == ">":
        return bool(a > b)
    if cond.op == "<=":
        return bool(a <= b)
    return bool(a >= b)


def sort_key(record: Mapping[str, Any], prop: str) -> tuple[int, Decimal, str]:
    """Numbers (and numeric Ids) first in numeric order, then times, then text; empty last."""
    value = lookup(record, prop)
    if value is None:
        return (3, Decimal(0), "")
    if isinstance(value, (int, float, Decimal)) or (isinstance(value, str) and value.isdigit()):
        return (0, Decimal(str(value)), "")
    when = as_time(value)
    if when is not None:
        return (1, Decimal(str(when.timestamp())), "")
    return (2, Decimal(0), str(value).lower())
