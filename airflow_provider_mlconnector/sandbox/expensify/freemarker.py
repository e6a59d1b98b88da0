"""A small, safe interpreter for the subset of FreeMarker that export templates use.

Supported: ``${expr}``, ``<#list seq as x>…<#sep>…</#sep>…<#else>…</#list>``,
``<#if>/<#elseif>/<#else>/</#if>``, ``<#-- comments -->``; expressions with dotted/bracket access,
string/number/boolean literals, ``!`` defaults (``x!``, ``x!"d"``, ``(a.b)!"d"``), ``??``, ``==``,
``!=``, ``<``, ``>``, ``<=``, ``>=``, ``gt``/``lt``/``gte``/``lte``, ``&&``, ``||``, ``!``, ``+``
and the built-ins ``?json_string``, ``?c``, ``?string(...)``, ``?has_content``, ``?size``,
``?length``, ``?trim``, ``?upper_case``, ``?lower_case``, ``?starts_with(...)``.

It is as strict as FreeMarker where strictness catches template bugs: a missing value without a
``!`` default is an error, a boolean cannot be printed without ``?c``/``?string``, ``?c`` refuses
strings, and a number printed without ``?c`` gets the en_US grouping (``1,234.5``) that breaks
JSON output. Nothing is evaluated with ``eval``; loops and output size are bounded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

MAX_OUTPUT = 20_000_000
MAX_ITERATIONS = 2_000_000


class TemplateError(Exception):
    """The template is invalid or failed while rendering (FreeMarker would stop the same way)."""


class _Missing:
    """A value that does not exist (FreeMarker's null/missing)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


# --------------------------------------------------------------------------- template AST


@dataclass
class Text:
    text: str


@dataclass
class Interp:
    expr: Expr


@dataclass
class SepNode:
    """``<#sep>``: rendered after every item of the enclosing list except the last."""

    body: list[Node]


@dataclass
class ListNode:
    seq: Expr
    var: str
    body: list[Node]
    empty: list[Node] | None = None


@dataclass
class IfNode:
    branches: list[tuple[Expr, list[Node]]]
    otherwise: list[Node] = field(default_factory=list)


Node = Text | Interp | SepNode | ListNode | IfNode

_TAG = re.compile(r"<#--.*?-->|\$\{|<#(?:list|if|elseif|else|sep)\b|</#(?:list|if|sep)\s*>|<#\w+", re.DOTALL)


def parse(source: str) -> list[Node]:
    """Parse template ``source`` into nodes (raises :class:`TemplateError`)."""
    parser = _TemplateParser(source)
    nodes, stop = parser.block(())
    if stop is not None:
        raise TemplateError(f"unexpected {stop} at offset {parser.pos}")
    return nodes


class _TemplateParser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0

    def block(self, stops: tuple[str, ...]) -> tuple[list[Node], str | None]:
        nodes: list[Node] = []
        while self.pos < len(self.source):
            match = _TAG.search(self.source, self.pos)
            if match is None:
                nodes.append(Text(self.source[self.pos :]))
                self.pos = len(self.source)
                break
            if match.start() > self.pos:
                nodes.append(Text(self.source[self.pos : match.start()]))
            token = match.group(0)
            self.pos = match.end()
            if token.startswith("<#--"):
                continue
            if token == "${":
                expr_src = self._until("}")
                nodes.append(Interp(parse_expression(expr_src)))
                continue
            name = token.lstrip("</#").strip().rstrip(">").strip()
            closing = token.startswith("</#")
            key = f"/{name}" if closing else name
            if key in stops:
                return nodes, key
            if closing:
                raise TemplateError(f"unexpected </#{name}> at offset {match.start()}")
            if name == "list":
                nodes.append(self._list())
            elif name == "if":
                nodes.append(self._if())
            else:
                raise TemplateError(f"unsupported or misplaced directive <#{name}> at offset {match.start()}")
        if stops:
            raise TemplateError(f"unclosed directive: expected one of {', '.join('<#' + s + '>' for s in stops)}")
        return nodes, None

    def _until(self, closer: str) -> str:
        """Read up to ``closer`` outside string literals (expressions may contain ``>`` or ``}``)."""
        start, quote = self.pos, ""
        while self.pos < len(self.source):
            char = self.source[self.pos]
            if quote:
                if char == "\\":
                    self.pos += 1
                elif char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == closer:
                text = self.source[start : self.pos]
                self.pos += 1
                return text
            self.pos += 1
        raise TemplateError(f"unterminated {'${' if closer == '}' else '<#'} starting at offset {start}")

    def _list(self) -> ListNode:
        header = self._until(">")
        match = re.fullmatch(r"\s*(.+?)\s+as\s+([A-Za-z_]\w*)\s*", header, re.DOTALL)
        if match is None:
            raise TemplateError(f"bad <#list {header}>")
        node = ListNode(parse_expression(match.group(1)), match.group(2), [])
        stop = None
        while True:
            body, stop = self.block(("/list", "sep", "else"))
            node.body.extend(body)
            if stop != "sep":
                break
            # <#sep> runs to </#sep>, or to the end of the list body when not closed explicitly.
            self._until(">")
            sep, stop = self.block(("/list", "/sep", "else"))
            node.body.append(SepNode(sep))
            if stop != "/sep":
                break
        if stop == "else":
            self._until(">")
            node.empty, stop = self.block(("/list",))
        return node

    def _if(self) -> IfNode:
        condition = parse_expression(self._until(">"))
        body, stop = self.block(("/if", "elseif", "else"))
        node = IfNode([(condition, body)])
        while stop == "elseif":
            condition = parse_expression(self._until(">"))
            body, stop = self.block(("/if", "elseif", "else"))
            node.branches.append((condition, body))
        if stop == "else":
            self._until(">")
            node.otherwise, stop = self.block(("/if",))
        return node


# --------------------------------------------------------------------------- expressions

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<op>\?\?|==|!=|<=|>=|&&|\|\||[!?.()\[\],<>=+])
      | (?P<name>[A-Za-z_]\w*)
    )""",
    re.VERBOSE,
)

Expr = tuple[Any, ...]


def parse_expression(source: str) -> Expr:
    tokens = _tokenize(source)
    parser = _ExprParser(tokens, source)
    expr = parser.or_expr()
    if parser.i != len(tokens):
        raise TemplateError(f"unexpected {tokens[parser.i][1]!r} in expression {source.strip()!r}")
    return expr


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        match = _TOKEN.match(source, pos)
        if match is None:
            raise TemplateError(f"cannot parse expression {source.strip()!r} at {source[pos:].strip()[:10]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


_COMPARISONS = {"==": "==", "=": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "lt": "<", "gt": ">"}
_COMPARISONS |= {"lte": "<=", "gte": ">="}


class _ExprParser:
    def __init__(self, tokens: list[tuple[str, str]], source: str) -> None:
        self.tokens = tokens
        self.source = source
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise TemplateError(f"expected {value or 'more'} in expression {self.source.strip()!r}")
        self.i += 1
        return token

    def at(self, *values: str) -> bool:
        token = self.peek()
        return token is not None and token[0] in ("op", "name") and token[1] in values

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while self.at("||"):
            self.take()
            left = ("or", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.at("&&"):
            self.take()
            left = ("and", left, self.not_expr())
        return left

    def not_expr(self) -> Expr:
        if self.at("!"):
            self.take()
            return ("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.additive()
        token = self.peek()
        if (
            token is not None
            and token[1] in _COMPARISONS
            and (token[0] == "op" or token[1] in ("lt", "gt", "lte", "gte"))
        ):
            self.take()
            return ("cmp", _COMPARISONS[token[1]], left, self.additive())
        return left

    def additive(self) -> Expr:
        left = self.postfix()
        while self.at("+"):
            self.take()
            left = ("add", left, self.postfix())
        return left

    def postfix(self) -> Expr:
        expr = self.primary()
        while True:
            if self.at("."):
                self.take()
                expr = ("get", expr, ("lit", self.take()[1]))
            elif self.at("["):
                self.take()
                index = self.or_expr()
                self.take("]")
                expr = ("get", expr, index)
            elif self.at("?"):
                self.take()
                name = self.take()[1]
                args: list[Expr] = []
                if self.at("("):
                    self.take()
                    while not self.at(")"):
                        args.append(self.or_expr())
                        if self.at(","):
                            self.take()
                    self.take(")")
                expr = ("builtin", name, expr, args)
            elif self.at("??"):
                self.take()
                expr = ("exists", expr)
            elif self.at("!") and not self._next_is("="):
                self.take()
                default: Expr = ("lit", "")
                if self._starts_operand():
                    default = self.postfix()
                expr = ("default", expr, default)
            else:
                return expr

    def _next_is(self, value: str) -> bool:
        return self.i + 1 < len(self.tokens) and self.tokens[self.i + 1][1] == value

    def _starts_operand(self) -> bool:
        token = self.peek()
        if token is None:
            return False
        kind, value = token
        if kind in ("string", "number"):
            return True
        if kind == "name":
            return value not in ("gt", "lt", "gte", "lte")
        return value == "("

    def primary(self) -> Expr:
        kind, value = self.take()
        if kind == "string":
            return ("lit", _unquote(value))
        if kind == "number":
            return ("lit", Decimal(value))
        if kind == "name":
            if value in ("true", "false"):
                return ("lit", value == "true")
            return ("var", value)
        if value == "(":
            inner = self.or_expr()
            self.take(")")
            return ("paren", inner)
        raise TemplateError(f"unexpected {value!r} in expression {self.source.strip()!r}")


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), body)


# --------------------------------------------------------------------------- rendering


def render(source: str, data: Mapping[str, Any]) -> str:
    """Render FreeMarker ``source`` over ``data`` (dicts, lists, str, int, Decimal, bool, None)."""
    renderer = _Renderer(dict(data))
    renderer.nodes(parse(source))
    return "".join(renderer.out)


class _Renderer:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.scopes = [scope]
        self.out: list[str] = []
        self.size = 0
        self.iterations = 0
        self.last_item: list[bool] = [True]

    def emit(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT:
            raise TemplateError("template output is too large")
        self.out.append(text)

    def nodes(self, nodes: Sequence[Node]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.emit(node.text)
            elif isinstance(node, Interp):
                self.emit(_display(self.eval(node.expr, strict=True), node.expr))
            elif isinstance(node, SepNode):
                if not self.last_item[-1]:
                    self.nodes(node.body)
            elif isinstance(node, ListNode):
                self.list_node(node)
            else:
                for condition, body in node.branches:
                    if self.truth(condition):
                        self.nodes(body)
                        break
                else:
                    self.nodes(node.otherwise)

    def list_node(self, node: ListNode) -> None:
        seq = self.eval(node.seq, strict=True)
        if not isinstance(seq, list | tuple):
            raise TemplateError(f"<#list> needs a sequence, got {_type_name(seq)}")
        if not seq:
            self.nodes(node.empty or [])
            return
        for index, item in enumerate(seq):
            self.iterations += 1
            if self.iterations > MAX_ITERATIONS:
                raise TemplateError("too many loop iterations")
            self.scopes.append({node.var: item})
            self.last_item.append(index == len(seq) - 1)
            try:
                self.nodes(node.body)
            finally:
                self.scopes.pop()
                self.last_item.pop()

    def truth(self, expr: Expr) -> bool:
        value = self.eval(expr, strict=True)
        if not isinstance(value, bool):
            raise TemplateError(f"a condition must be a boolean, got {_type_name(value)}")
        return value

    def lookup(self, name: str) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                value = scope[name]
                return MISSING if value is None else value
        return MISSING

    def eval(self, expr: Expr, *, strict: bool) -> Any:
        """Evaluate; with ``strict`` a missing value is an error (FreeMarker's InvalidReferenceException)."""
        value = self._eval(expr, lenient_parent=False)
        if strict and value is MISSING:
            raise TemplateError(f"the expression {_describe(expr)} is missing (null); use ! or ?? to handle it")
        return value

    def _eval(self, expr: Expr, *, lenient_parent: bool) -> Any:
        op = expr[0]
        if op == "lit":
            return expr[1]
        if op == "var":
            return self.lookup(expr[1])
        if op == "paren":
            return self._eval(expr[1], lenient_parent=lenient_parent)
        if op == "get":
            parent = self._eval(expr[1], lenient_parent=lenient_parent)
            if parent is MISSING:
                if lenient_parent:
                    return MISSING
                raise TemplateError(f"the expression {_describe(expr[1])} is missing (null)")
            key = self.eval(expr[2], strict=True)
            if isinstance(parent, Mapping):
                value = parent.get(str(key), None)
                return MISSING if value is None else value
            if isinstance(parent, list | tuple) and isinstance(key, int | Decimal):
                index = int(key)
                return parent[index] if 0 <= index < len(parent) else MISSING
            raise TemplateError(f"cannot read {key!r} of a {_type_name(parent)}")
        if op == "default":
            # ``(a.b)!d`` protects the whole chain; ``a.b!d`` only the last step (as in FreeMarker).
            value = self._eval(expr[1], lenient_parent=expr[1][0] == "paren")
            return self.eval(expr[2], strict=True) if value is MISSING else value
        if op == "exists":
            return self._eval(expr[1], lenient_parent=expr[1][0] == "paren") is not MISSING
        if op == "builtin":
            return self.builtin(expr[1], expr[2], expr[3])
        if op == "not":
            return not self.truth(expr[1])
        if op == "and":
            return self.truth(expr[1]) and self.truth(expr[2])
        if op == "or":
            return self.truth(expr[1]) or self.truth(expr[2])
        if op == "cmp":
            return _compare(expr[1], self.eval(expr[2], strict=True), self.eval(expr[3], strict=True))
        if op == "add":
            left, right = self.eval(expr[1], strict=True), self.eval(expr[2], strict=True)
            if _is_number(left) and _is_number(right):
                return Decimal(str(left)) + Decimal(str(right))
            return _as_string(left, expr[1]) + _as_string(right, expr[2])
        raise TemplateError(f"unsupported expression {op}")

    def builtin(self, name: str, target: Expr, args: list[Expr]) -> Any:
        if name == "has_content":
            value = self._eval(target, lenient_parent=True)
            return value is not MISSING and value != "" and value != [] and value != {}
        value = self.eval(target, strict=True)
        params = [self.eval(a, strict=True) for a in args]
        if name == "c":
            if isinstance(value, bool):
                return "true" if value else "false"
            if _is_number(value):
                return _computer_number(value)
            raise TemplateError(f"?c needs a number or boolean, got {_type_name(value)} ({_describe(target)})")
        if name == "json_string":
            return json.dumps(_as_string(value, target))[1:-1]
        if name == "string":
            if isinstance(value, bool) and len(params) == 2:
                return _as_string(params[0] if value else params[1], target)
            if isinstance(value, bool):
                raise TemplateError("?string on a boolean needs two arguments")
            return _as_string(value, target)
        if name in ("size", "length"):
            if name == "size" and isinstance(value, list | tuple | Mapping):
                return len(value)
            if name == "length" and isinstance(value, str):
                return len(value)
            raise TemplateError(f"?{name} cannot be applied to a {_type_name(value)}")
        if name in ("trim", "upper_case", "lower_case"):
            text = _as_string(value, target)
            return {"trim": text.strip(), "upper_case": text.upper(), "lower_case": text.lower()}[name]
        if name == "starts_with" and len(params) == 1:
            return _as_string(value, target).startswith(_as_string(params[0], target))
        raise TemplateError(f"unsupported built-in ?{name}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _computer_number(value: Any) -> str:
    """``?c``: no grouping, no exponent, as many decimals as needed."""
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def _human_number(value: Any) -> str:
    """What ``${number}`` prints with the en_US locale: grouping commas, at most 3 decimals."""
    number = Decimal(str(value)).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN).normalize()
    if number == number.to_integral_value():
        return f"{int(number):,}"
    whole, _, fraction = format(number, "f").partition(".")
    return f"{int(whole):,}.{fraction}" if whole not in ("-0",) else f"-0.{fraction}"


def _as_string(value: Any, expr: Expr) -> str:
    if isinstance(value, str):
        return value
    if _is_number(value):
        return _human_number(value)
    if isinstance(value, bool):
        raise TemplateError(f'cannot convert boolean {_describe(expr)} to a string; use ?c or ?string("a", "b")')
    raise TemplateError(f"expected a string for {_describe(expr)}, got {_type_name(value)}")


def _display(value: Any, expr: Expr) -> str:
    return _as_string(value, expr)


def _compare(op: str, left: Any, right: Any) -> bool:
    a: Any
    b: Any
    if _is_number(left) and _is_number(right):
        a, b = Decimal(str(left)), Decimal(str(right))
    elif type(left) is type(right) and isinstance(left, str | bool):
        a, b = left, right
    else:
        raise TemplateError(f"cannot compare {_type_name(left)} with {_type_name(right)}")
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if isinstance(a, bool):
        raise TemplateError("booleans can only be compared for equality")
    return bool({"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op])


def _type_name(value: Any) -> str:
    if value is MISSING:
        return "missing value"
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "hash"
    if isinstance(value, list | tuple):
        return "sequence"
    return type(value).__name__


def _describe(expr: Expr) -> str:
    op = expr[0]
    if op == "var":
        return str(expr[1])
    if op == "lit":
        return repr(expr[1])
    if op == "get":
        key = expr[2]
        return f"{_describe(expr[1])}.{key[1]}" if key[0] == "lit" else f"{_describe(expr[1])}[...]"
    if op == "paren":
        return f"({_describe(expr[1])})"
    return str(op)
