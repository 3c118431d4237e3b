"""A small, safe expression language for the "Derived column" and "Filter rows" nodes, compiled to polars.

Analysts type formulas such as ``if(income > 0, debt / income, null)``. The text is never handed to Python's
eval/exec/compile/ast: a hand-written tokenizer and a Pratt (precedence-climbing) parser build a tiny syntax tree,
and only whitelisted functions and operators are turned into ``pl.Expr`` objects, so user text cannot reach
attributes, imports or builtins.

Semantics follow polars on purpose (one set of rules for the whole workbench): ``/`` is true division and a
division by zero gives ``inf``/``NaN`` rather than null; comparisons with null give null (use ``is_null(x)``);
``weekday(d)`` is 1 for Monday to 7 for Sunday. Keywords (``and or not in true false null``) are reserved: a column
with such a name, a space or punctuation is written in backticks, e.g. ```monthly income```. Function names are only
functions when followed by ``(``, so a column called ``year`` can still be used bare.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import polars as pl

from engine.i18n import tr

MAX_LENGTH = 2000
MAX_DEPTH = 100
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_DIGITS = "0123456789"
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "`": "`"}
# Multi-character operators first so the longest match wins.
_OPERATORS = ("**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "<", ">", "(", ")", ",")
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
# Left binding powers of infix operators (higher binds tighter).
_OR, _AND, _NOT, _CMP, _SUM, _PRODUCT, _UNARY, _POWER = 10, 20, 30, 40, 50, 60, 70, 80
_INFIX_POWER = {"or": _OR, "and": _AND, "in": _CMP, "not in": _CMP, "+": _SUM, "-": _SUM,
                "*": _PRODUCT, "/": _PRODUCT, "//": _PRODUCT, "%": _PRODUCT, "**": _POWER,
                **{op: _CMP for op in _COMPARISONS}}


class ExpressionError(ValueError):
    """A user-facing error in an expression, pointing at a 1-based character column.

    The string form carries the message, the expression and a caret line so the node can show it as is.
    """

    def __init__(self, message: str, position: int, expression: str = "") -> None:
        self.message = message
        self.position = position
        self.expression = expression
        super().__init__(_with_caret(message, position, expression))


def _with_caret(message: str, position: int, expression: str) -> str:
    """Append the expression and a caret under `position`; tabs/newlines become spaces so the caret lines up."""
    shown = expression.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return f"{message}\n  {shown}\n  {' ' * (position - 1)}^"


# ------------------------------------------------------------------------------------------------ tokenizer

@dataclass(frozen=True)
class Token:
    kind: str  # "num", "str", "name" (bare identifier), "quoted" (backtick name), "op", "end"
    value: object
    pos: int  # 1-based column


def _is_name_start(ch: str) -> bool:
    return ch == "_" or ch.isalpha()


def _is_name_char(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens; the last one is always an "end" token placed just past the text."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        token, i = _read_token(text, i)
        tokens.append(token)
    tokens.append(Token("end", None, len(text) + 1))
    return tokens


def _read_token(text: str, i: int) -> tuple[Token, int]:
    """Read one token starting at index `i`; return it and the index after it."""
    ch = text[i]
    if ch in _DIGITS or (ch == "." and text[i + 1:i + 2] in tuple(_DIGITS)):
        return _read_number(text, i)
    if ch in "'\"":
        return _read_string(text, i)
    if ch == "`":
        return _read_quoted_name(text, i)
    if _is_name_start(ch):
        end = i + 1
        while end < len(text) and _is_name_char(text[end]):
            end += 1
        return Token("name", text[i:end], i + 1), end
    for op in _OPERATORS:
        if text.startswith(op, i):
            return Token("op", op, i + 1), i + len(op)
    raise _misplaced_character(text, i)


def _misplaced_character(text: str, i: int) -> ExpressionError:
    """Explain characters from other languages (=, &&, ||, !) instead of just calling them unexpected."""
    pos = i + 1
    if text.startswith(("&&", "||"), i) or text[i] in "&|":
        word = "and" if text[i] == "&" else "or"
        symbol = text[i:i + 2] if text[i:i + 2] in ("&&", "||") else text[i]
        return ExpressionError(tr("Unexpected {symbol!r} at column {pos}; use {word!r} instead",
                                  symbol=symbol, pos=pos, word=word), pos, text)
    if text[i] == "=":
        return ExpressionError(tr("Unexpected '=' at column {pos}; use '==' to compare values", pos=pos), pos, text)
    if text[i] == "!":
        return ExpressionError(tr("Unexpected '!' at column {pos}; use 'not' instead", pos=pos), pos, text)
    return ExpressionError(tr("Unexpected character {char!r} at column {pos}", char=text[i], pos=pos), pos, text)


def _read_number(text: str, i: int) -> tuple[Token, int]:
    """Integers stay ints; a decimal point or exponent makes a float (1.5, .5, 1e3)."""
    end = i
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    is_float = False
    if end < len(text) and text[end] == ".":
        is_float = True
        end += 1
        while end < len(text) and text[end] in _DIGITS:
            end += 1
    if end < len(text) and text[end] in "eE":
        exp_end = end + 1
        if exp_end < len(text) and text[exp_end] in "+-":
            exp_end += 1
        if exp_end >= len(text) or text[exp_end] not in _DIGITS:
            raise ExpressionError(tr("Malformed number {number!r} at column {pos}",
                                     number=text[i:exp_end], pos=i + 1), i + 1, text)
        is_float, end = True, exp_end
        while end < len(text) and text[end] in _DIGITS:
            end += 1
    if end < len(text) and _is_name_char(text[end]):
        raise ExpressionError(tr("Malformed number {number!r} at column {pos}",
                                 number=text[i:end + 1], pos=i + 1), i + 1, text)
    raw = text[i:end]
    return Token("num", float(raw) if is_float else int(raw), i + 1), end


def _read_string(text: str, i: int) -> tuple[Token, int]:
    """A quoted string with backslash escapes; unknown escapes keep the backslash (as Python does)."""
    quote, chars, j = text[i], [], i + 1
    while j < len(text):
        ch = text[j]
        if ch == quote:
            return Token("str", "".join(chars), i + 1), j + 1
        if ch == "\\" and j + 1 < len(text):
            nxt = text[j + 1]
            chars.append(_ESCAPES.get(nxt, "\\" + nxt))
            j += 2
            continue
        chars.append(ch)
        j += 1
    raise ExpressionError(tr("Unterminated string starting at column {pos}", pos=i + 1), i + 1, text)


def _read_quoted_name(text: str, i: int) -> tuple[Token, int]:
    """A backtick-quoted column name: any characters except a backtick."""
    end = text.find("`", i + 1)
    if end < 0:
        raise ExpressionError(tr("Unterminated column name starting at column {pos}", pos=i + 1), i + 1, text)
    if end == i + 1:
        raise ExpressionError(tr("Empty column name at column {pos}", pos=i + 1), i + 1, text)
    return Token("quoted", text[i + 1:end], i + 1), end + 1


# ------------------------------------------------------------------------------------------------ syntax tree

@dataclass(frozen=True)
class Node:
    pos: int
    depth: int = field(default=1, init=False, compare=False)

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True)
class Literal(Node):
    value: object = None


@dataclass(frozen=True)
class Column(Node):
    name: str = ""


@dataclass(frozen=True)
class Unary(Node):
    op: str = ""
    operand: Node | None = None

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Binary(Node):
    op: str = ""
    left: Node | None = None
    right: Node | None = None

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class InList(Node):
    operand: Node | None = None
    items: tuple[Node, ...] = ()
    negated: bool = False

    def children(self) -> tuple[Node, ...]:
        return (self.operand, *self.items)


@dataclass(frozen=True)
class Call(Node):
    name: str = ""
    args: tuple[Node, ...] = ()

    def children(self) -> tuple[Node, ...]:
        return self.args


def _walk(node: Node) -> Iterator[Node]:
    """Nodes in source order (pre-order, left to right)."""
    yield node
    for child in node.children():
        yield from _walk(child)


# ------------------------------------------------------------------------------------------------ parser

class _Parser:
    """Pratt parser: `_expression(rbp)` keeps folding infix operators that bind tighter than `rbp`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.nesting = 0

    # -- helpers
    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def _peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def _advance(self) -> Token:
        token = self.current
        self.index += 1
        return token

    def _error(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, pos, self.text)

    def _is_op(self, token: Token, *ops: str) -> bool:
        return token.kind == "op" and token.value in ops

    def _is_word(self, token: Token, word: str) -> bool:
        return token.kind == "name" and str(token.value).lower() == word

    def _node(self, node: Node) -> Node:
        """Record the tree depth so compiling (and polars) never recurses without bound."""
        depth = 1 + max((child.depth for child in node.children()), default=0)
        if depth > MAX_DEPTH:
            raise self._too_deep(node.pos)
        object.__setattr__(node, "depth", depth)
        return node

    def _too_deep(self, pos: int) -> ExpressionError:
        return self._error(tr("Expression is nested too deeply at column {pos} (the limit is {limit} levels)",
                              pos=pos, limit=MAX_DEPTH), pos)

    # -- entry
    def parse(self) -> Node:
        if self.current.kind == "end":
            raise self._error(tr("The expression is empty at column {pos}", pos=1), 1)
        node = self._expression(0)
        token = self.current
        if token.kind != "end":
            if self._is_op(token, ")"):
                raise self._error(tr("Unmatched ')' at column {pos}", pos=token.pos), token.pos)
            raise self._error(tr("Unexpected {token!r} at column {pos}; expected an operator or the end",
                                 token=self._describe(token), pos=token.pos), token.pos)
        return node

    def _describe(self, token: Token) -> str:
        if token.kind == "str":
            return repr(token.value)
        if token.kind == "quoted":
            return f"`{token.value}`"
        return str(token.value)

    # -- Pratt core
    def _expression(self, rbp: int) -> Node:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self._too_deep(self.current.pos)
        try:
            left = self._prefix()
            while (op := self._infix_operator()) is not None and _INFIX_POWER[op] > rbp:
                left = self._infix(op, left)
            return left
        finally:
            self.nesting -= 1

    def _infix_operator(self) -> str | None:
        """The infix operator at the current token, if any ('not in' spans two tokens)."""
        token = self.current
        if token.kind == "op" and token.value in _INFIX_POWER:
            return str(token.value)
        if token.kind == "name":
            word = str(token.value).lower()
            if word in ("and", "or", "in"):
                return word
            if word == "not" and self._is_word(self._peek(), "in"):
                return "not in"
        return None

    def _operand(self, after: Token, rbp: int) -> Node:
        """Parse the value an operator needs, with a clear error when there is none."""
        token = self.current
        if token.kind == "end" or self._is_op(token, ")", ",") or self._starts_infix_only(token):
            raise self._error(tr("Expected a value after {op!r} at column {pos}", op=str(after.value), pos=token.pos),
                              token.pos)
        return self._expression(rbp)

    def _starts_infix_only(self, token: Token) -> bool:
        """Tokens that can never begin a value (so '1 + * 2' reports a missing operand, not a strange token)."""
        if token.kind == "op":
            return token.value not in ("-", "+", "(")
        return token.kind == "name" and str(token.value).lower() in ("and", "or", "in")

    def _prefix(self) -> Node:
        token = self.current
        if token.kind == "end" or self._starts_infix_only(token) or self._is_op(token, ")", ","):
            if self._is_op(token, ")"):
                raise self._error(tr("Unmatched ')' at column {pos}", pos=token.pos), token.pos)
            raise self._error(tr("Expected a value at column {pos}", pos=token.pos), token.pos)
        self._advance()
        if token.kind in ("num", "str"):
            return self._node(Literal(token.pos, value=token.value))
        if token.kind == "quoted":
            return self._node(Column(token.pos, name=str(token.value)))
        if token.kind == "op":
            return self._prefix_operator(token)
        return self._name(token)

    def _prefix_operator(self, token: Token) -> Node:
        if token.value == "(":
            inner = self._operand(token, 0)
            self._expect_close(token)
            return inner
        # Unary minus/plus bind looser than '**' so that -2 ** 2 == -(2 ** 2), as in Python.
        operand = self._operand(token, _UNARY)
        if token.value == "+":
            return operand
        return self._node(Unary(token.pos, op="-", operand=operand))

    def _expect_close(self, opening: Token) -> None:
        token = self.current
        if not self._is_op(token, ")"):
            raise self._error(tr("Missing ')' at column {pos} to close the '(' at column {open}",
                                 pos=token.pos, open=opening.pos), token.pos)
        self._advance()

    def _name(self, token: Token) -> Node:
        word = str(token.value)
        lower = word.lower()
        if lower in ("true", "false"):
            return self._node(Literal(token.pos, value=lower == "true"))
        if lower == "null":
            return self._node(Literal(token.pos, value=None))
        if lower == "not":
            operand = self._operand(token, _NOT)
            return self._node(Unary(token.pos, op="not", operand=operand))
        if self._is_op(self.current, "("):
            return self._call(token)
        return self._node(Column(token.pos, name=word))

    def _call(self, name: Token) -> Node:
        opening = self._advance()
        args = self._arguments(opening)
        return self._node(Call(name.pos, name=str(name.value), args=tuple(args)))

    def _arguments(self, opening: Token) -> list[Node]:
        """Comma-separated values up to the closing ')'; the '(' has been consumed."""
        args: list[Node] = []
        if self._is_op(self.current, ")"):
            self._advance()
            return args
        while True:
            args.append(self._operand(opening if not args else self.tokens[self.index - 1], 0))
            if self._is_op(self.current, ","):
                self._advance()
                continue
            self._expect_close(opening)
            return args

    def _infix(self, op: str, left: Node) -> Node:
        token = self._advance()
        if op == "not in":
            self._advance()
        if op in ("in", "not in"):
            return self._in_list(token, left, negated=op == "not in")
        # '**' is right-associative: its right side may hold another '**' (and a unary minus, as in 2 ** -1).
        rbp = _POWER - 1 if op == "**" else _INFIX_POWER[op]
        right = self._operand(token, rbp)
        node = self._node(Binary(token.pos, op=op, left=left, right=right))
        if op in _COMPARISONS and self._is_op(self.current, *_COMPARISONS):
            nxt = self.current
            raise self._error(tr("Comparisons cannot be chained at column {pos}; combine them with 'and'",
                                 pos=nxt.pos), nxt.pos)
        return node

    def _in_list(self, token: Token, left: Node, negated: bool) -> Node:
        opening = self.current
        if not self._is_op(opening, "("):
            raise self._error(tr("Expected '(' after 'in' at column {pos}, as in x in (1, 2)", pos=opening.pos),
                              opening.pos)
        self._advance()
        items = self._arguments(opening)
        if not items:
            raise self._error(tr("The list after 'in' at column {pos} is empty", pos=opening.pos), opening.pos)
        return self._node(InList(token.pos, operand=left, items=tuple(items), negated=negated))


def parse(text: str) -> Node:
    """Parse `text` into a syntax tree, enforcing the length limit first."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(tr("The expression is too long at column {pos} (the limit is {limit} characters)",
                                 pos=MAX_LENGTH + 1, limit=MAX_LENGTH), MAX_LENGTH + 1, text[:MAX_LENGTH])
    return _Parser(text).parse()


# ------------------------------------------------------------------------------------------------ compiler

@dataclass(frozen=True)
class _Function:
    min_args: int
    max_args: int | None  # None: any number
    build: Callable[[list[pl.Expr], Call, _Compiler], pl.Expr]


def _days_between(args: list[pl.Expr], call: Call, compiler: _Compiler) -> pl.Expr:
    """(b - a) in whole days; a string literal such as '2024-01-31' is read as an ISO date."""
    start, end = (compiler.date_arg(node, expr) for node, expr in zip(call.args, args))
    return (end - start).dt.total_days()


def _round(args: list[pl.Expr], call: Call, compiler: _Compiler) -> pl.Expr:
    decimals = compiler.whole_number(call.args[1], call) if len(args) > 1 else 0
    return args[0].round(decimals)


def _strict_free(dtype: type[pl.DataType]) -> Callable[[list[pl.Expr], Call, _Compiler], pl.Expr]:
    """Casts never fail the whole run: values that do not convert become null."""
    return lambda a, c, k: a[0].cast(dtype, strict=False)


FUNCTIONS: dict[str, _Function] = {
    "abs": _Function(1, 1, lambda a, c, k: a[0].abs()),
    "round": _Function(1, 2, _round),
    "floor": _Function(1, 1, lambda a, c, k: a[0].floor()),
    "ceil": _Function(1, 1, lambda a, c, k: a[0].ceil()),
    "log": _Function(1, 1, lambda a, c, k: a[0].log()),
    "log10": _Function(1, 1, lambda a, c, k: a[0].log10()),
    "exp": _Function(1, 1, lambda a, c, k: a[0].exp()),
    "sqrt": _Function(1, 1, lambda a, c, k: a[0].sqrt()),
    "min": _Function(1, None, lambda a, c, k: pl.min_horizontal(a)),
    "max": _Function(1, None, lambda a, c, k: pl.max_horizontal(a)),
    "coalesce": _Function(1, None, lambda a, c, k: pl.coalesce(a)),
    "if": _Function(3, 3, lambda a, c, k: pl.when(a[0]).then(a[1]).otherwise(a[2])),
    "is_null": _Function(1, 1, lambda a, c, k: a[0].is_null()),
    "is_not_null": _Function(1, 1, lambda a, c, k: a[0].is_not_null()),
    "upper": _Function(1, 1, lambda a, c, k: a[0].str.to_uppercase()),
    "lower": _Function(1, 1, lambda a, c, k: a[0].str.to_lowercase()),
    "length": _Function(1, 1, lambda a, c, k: a[0].str.len_chars()),
    "contains": _Function(2, 2, lambda a, c, k: a[0].str.contains(a[1], literal=True)),
    "starts_with": _Function(2, 2, lambda a, c, k: a[0].str.starts_with(a[1])),
    "ends_with": _Function(2, 2, lambda a, c, k: a[0].str.ends_with(a[1])),
    "year": _Function(1, 1, lambda a, c, k: a[0].dt.year()),
    "month": _Function(1, 1, lambda a, c, k: a[0].dt.month()),
    "day": _Function(1, 1, lambda a, c, k: a[0].dt.day()),
    "weekday": _Function(1, 1, lambda a, c, k: a[0].dt.weekday()),
    "days_between": _Function(2, 2, _days_between),
    "clip": _Function(3, 3, lambda a, c, k: a[0].clip(a[1], a[2])),
    "to_float": _Function(1, 1, _strict_free(pl.Float64)),
    "to_int": _Function(1, 1, _strict_free(pl.Int64)),
    "to_str": _Function(1, 1, _strict_free(pl.String)),
}

_BINARY: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
    "//": lambda a, b: a // b, "%": lambda a, b: a % b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "and": lambda a, b: a & b, "or": lambda a, b: a | b,
}


def _suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest known name: a case-insensitive match first, then difflib's nearest."""
    choices = list(choices)
    for choice in choices:
        if choice.lower() == word.lower():
            return choice
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


class _Compiler:
    """Turn a checked syntax tree into a polars expression, validating columns and function calls."""

    def __init__(self, text: str, columns: Iterable[str]) -> None:
        self.text = text
        self.columns = list(dict.fromkeys(columns))
        self.known = set(self.columns)

    def _error(self, message: str, pos: int) -> ExpressionError:
        return ExpressionError(message, pos, self.text)

    def compile(self, node: Node) -> pl.Expr:
        if isinstance(node, Literal):
            return pl.lit(node.value)
        if isinstance(node, Column):
            return self._column(node)
        if isinstance(node, Unary):
            operand = self.compile(node.operand)
            return ~operand if node.op == "not" else -operand
        if isinstance(node, Binary):
            if node.op == "**":
                return self._power(node)
            return _BINARY[node.op](self.compile(node.left), self.compile(node.right))
        if isinstance(node, InList):
            return self._in_list(node)
        assert isinstance(node, Call)
        return self._call(node)

    def _column(self, node: Column) -> pl.Expr:
        if node.name in self.known:
            return pl.col(node.name)
        suggestion = _suggest(node.name, self.columns)
        if suggestion is None:
            raise self._error(tr("Unknown column {name!r} at column {pos}", name=node.name, pos=node.pos), node.pos)
        raise self._error(tr("Unknown column {name!r} at column {pos} (did you mean {suggestion!r}?)",
                             name=node.name, pos=node.pos, suggestion=suggestion), node.pos)

    def _power(self, node: Binary) -> pl.Expr:
        """Integer powers stay integers only for a literal whole exponent >= 0; otherwise the base becomes a float,
        because polars refuses an integer base with a negative integer exponent at run time (2 ** -1 is 0.5)."""
        base, exponent = self.compile(node.left), self.compile(node.right)
        right = node.right
        if not (isinstance(right, Literal) and type(right.value) is int and right.value >= 0):
            base = base.cast(pl.Float64)
        return base.pow(exponent)

    def _in_list(self, node: InList) -> pl.Expr:
        """x in (a, b) is any(x == a, x == b): flat (no deep chains) and fine with mixed int/float values."""
        operand = self.compile(node.operand)
        found = pl.any_horizontal([operand == self.compile(item) for item in node.items])
        return ~found if node.negated else found

    def _call(self, node: Call) -> pl.Expr:
        function = FUNCTIONS.get(node.name.lower())
        if function is None:
            raise self._unknown_function(node)
        self._check_arity(node, function)
        return function.build([self.compile(arg) for arg in node.args], node, self)

    def _unknown_function(self, node: Call) -> ExpressionError:
        suggestion = _suggest(node.name.lower(), FUNCTIONS)
        if suggestion is None:
            return self._error(tr("Unknown function {name!r} at column {pos}", name=node.name, pos=node.pos),
                               node.pos)
        return self._error(tr("Unknown function {name!r} at column {pos} (did you mean {suggestion!r}?)",
                              name=node.name, pos=node.pos, suggestion=suggestion), node.pos)

    def _check_arity(self, node: Call, function: _Function) -> None:
        got, low, high = len(node.args), function.min_args, function.max_args
        if low <= got and (high is None or got <= high):
            return
        name, pos = node.name.lower(), node.pos
        if high is None:
            message = tr("{name}() takes at least {low} argument(s) but got {got} at column {pos}",
                         name=name, low=low, got=got, pos=pos)
        elif low == high:
            message = tr("{name}() takes {low} argument(s) but got {got} at column {pos}",
                         name=name, low=low, got=got, pos=pos)
        else:
            message = tr("{name}() takes {low} to {high} arguments but got {got} at column {pos}",
                         name=name, low=low, high=high, got=got, pos=pos)
        raise self._error(message, pos)

    def whole_number(self, node: Node, call: Call) -> int:
        """Literal non-negative integer arguments (round's decimals), which polars needs as a plain int."""
        if isinstance(node, Literal) and isinstance(node.value, int) and not isinstance(node.value, bool) \
                and node.value >= 0:
            return node.value
        raise self._error(tr("{name}() needs a whole number of 0 or more at column {pos}",
                             name=call.name.lower(), pos=node.pos), node.pos)

    def date_arg(self, node: Node, expr: pl.Expr) -> pl.Expr:
        if isinstance(node, Literal) and isinstance(node.value, str):
            return expr.str.to_date()
        return expr


# ------------------------------------------------------------------------------------------------ public API

def parse_expression(text: str, columns: Iterable[str]) -> pl.Expr:
    """Compile `text` into a polars expression over a table with these `columns`.

    Raises ExpressionError (a ValueError) with the 1-based column of the problem; nothing is evaluated here.
    """
    return _Compiler(text, columns).compile(parse(text))


def referenced_columns(text: str) -> list[str]:
    """Column names the expression uses, in order of first use, so a node can check its inputs before running."""
    names = (node.name for node in _walk(parse(text)) if isinstance(node, Column))
    return list(dict.fromkeys(names))
