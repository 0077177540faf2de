"""Parser for Falco condition expressions.

Hand-written recursive descent rather than a grammar library (lark): Falco's
grammar is not context-free at the lexical level (``in`` is an operator
prefix, bare strings such as ``runc:[0:PARENT]`` or ``/usr/bin/*`` are values
only in value position, ``not(`` differs from ``not x``) and users rely on the
exact error texts and positions libsinsp reports ("unexpected token after
'execve', expecting 'or', 'and'").  Mirroring libsinsp's parser structure
reproduces both; a generated parser would need the same special cases bolted
on and report different positions.

Grammar (libsinsp ``filter/parser.h``, plus Falco 0.44's ``regex``,
``len/join/concat/getopt`` and the ``oneof/anyof/allof`` modifiers)::

    Expr     := OrExpr
    OrExpr   := AndExpr ('or' AndExpr)*
    AndExpr  := NotExpr ('and' NotExpr)*
    NotExpr  := ('not' blank)* ('not(' Expr ')' | Check)
    Check    := '(' Expr ')' | Field Cond | Transformer Cond | Identifier
    Cond     := 'exists' | NumOp NumValue | StrOp [Modifier ListValue | StrValue]
              | ListOp ListValue
"""

from __future__ import annotations

import re
import sys

from falcopy.common.errors import FalcopyError
from falcopy.engine import ast

MAX_DEPTH = 1000

_RE_NOT = re.compile(r"not[ \t\r\n\f\v]+")
_RE_IDENT = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
_RE_FIELD = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+")
_RE_FIELD_ARG_BARE = re.compile(r"[^\]\[\"' \t\r\n\f\v]+")
_RE_HEX = re.compile(r"0[xX][0-9a-zA-Z]+")
_RE_NUM = re.compile(r"[+\-]?[0-9]+\.?[0-9]*(?:[eE][+\-][0-9]+)?")
_RE_BARE = re.compile(r"[^()\"' \t\r\n\f\v=,]+")

UNARY_OPS = ("exists",)
NUM_OPS = ("<=", "<", ">=", ">")
# a blank must follow word operators (libsinsp matches "glob " etc.)
STR_OPS = ("==", "=", "!=", "glob ", "iglob ", "contains ", "icontains ", "bcontains ",
           "startswith ", "bstartswith ", "endswith ", "regex ")
LIST_OPS = ("intersects", "in", "pmatch")
MODIFIERS = ("oneof", "anyof", "allof")
TRANSFORMERS = ("tolower(", "toupper(", "b64(", "basename(", "len(", "join(", "concat(", "getopt(")
VAL = "val("

_BLANKS = " \t\b\r\n"


class ParseError(FalcopyError):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _quoted_list(vals: list[str]) -> str:
    return ", ".join(f"'{v}'" for v in vals)


def supported_operators() -> list[str]:
    return [o.strip() for o in (*UNARY_OPS, *NUM_OPS, *STR_OPS, *LIST_OPS)]


def supported_transformers(include_val: bool = True) -> list[str]:
    names = [t[:-1] for t in TRANSFORMERS]
    return (["val", *names]) if include_val else names


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4] or ""):
                out.append(chr(int(body[i + 2 : i + 4], 16)))
                i += 4
                continue
        out.append(c)
        i += 1
    return "".join(out)


class Parser:
    def __init__(self, text: str, max_depth: int = MAX_DEPTH) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0
        self.last = ""
        self.depth = 0
        self.max_depth = max_depth

    # ------------------------------------------------------------------ entry
    def parse(self) -> ast.Node:
        if self.n == 0:
            raise ParseError("filter input string is empty", 0)
        # libsinsp's depth counter counts calls, one Python frame each (plus a few):
        # make room once, never lower the limit (other threads may be parsing)
        needed = self.max_depth * 3 + 200
        if sys.getrecursionlimit() < needed:
            sys.setrecursionlimit(needed)
        try:
            res = self.parse_or()
        except RecursionError as e:  # pragma: no cover - guarded by the depth counter
            raise ParseError(f"exceeded max depth limit of {self.max_depth}", self.i) from e
        if self.i != self.n:
            raise ParseError(f"unexpected token after '{self.last}', expecting 'or', 'and'", self.i)
        return res

    # ------------------------------------------------------------------ helpers
    def _enter(self) -> None:
        self.depth += 1
        if self.depth >= self.max_depth:
            raise ParseError(f"exceeded max depth limit of {self.max_depth}", self.i)

    def _leave(self) -> None:
        self.depth -= 1

    def blank(self) -> bool:
        i = self.i
        while i < self.n and self.s[i] in _BLANKS:
            i += 1
        found = i != self.i
        self.i = i
        return found

    def lit(self, tok: str) -> bool:
        if self.s.startswith(tok, self.i):
            self.i += len(tok)
            self.last = tok
            return True
        return False

    def lit_list(self, toks: tuple[str, ...]) -> bool:
        return any(self.lit(t) for t in toks)

    def rgx(self, pattern: re.Pattern[str]) -> bool:
        m = pattern.match(self.s, self.i)
        if m is None or m.end() == self.i:
            return False
        self.last = m.group(0)
        self.i = m.end()
        return True

    def quoted(self) -> bool:
        if self.i >= self.n or self.s[self.i] not in "'\"":
            return False
        delim = self.s[self.i]
        j = self.i + 1
        prev = ""
        while j < self.n:
            c = self.s[j]
            if c == delim and prev != "\\":
                self.last = unescape(self.s[self.i + 1 : j])
                self.i = j + 1
                return True
            # an escaped backslash must not escape the delimiter after it
            prev = "" if (c == "\\" and prev == "\\") else c
            j += 1
        return False

    # ------------------------------------------------------------------ grammar
    def parse_or(self) -> ast.Node:
        self._enter()
        pos = self.i
        self.blank()
        children = [self.parse_and()]
        self.blank()
        while self.lit("or"):
            if not self.blank():
                if self.lit("("):
                    child = self.parse_embedded()
                else:
                    raise ParseError("expected blank or '(' after 'or'", self.i)
            else:
                child = self.parse_and()
            children.append(child)
            self.blank()
        self._leave()
        return ast.Or(pos, children=children) if len(children) > 1 else children[0]

    def parse_and(self) -> ast.Node:
        self._enter()
        pos = self.i
        self.blank()
        children = [self.parse_not()]
        self.blank()
        while self.lit("and"):
            if not self.blank():
                if self.lit("("):
                    child = self.parse_embedded()
                else:
                    raise ParseError("expected blank or '(' after 'and'", self.i)
            else:
                child = self.parse_not()
            children.append(child)
            self.blank()
        self._leave()
        return ast.And(pos, children=children) if len(children) > 1 else children[0]

    def parse_not(self) -> ast.Node:
        self._enter()
        self.blank()
        pos = self.i
        negate = False
        while self.rgx(_RE_NOT):
            negate = not negate
        if self.lit("not("):
            negate = not negate
            child = self.parse_embedded()
        else:
            child = self.parse_check()
        self._leave()
        return ast.Not(pos, child=child) if negate else child

    def parse_embedded(self) -> ast.Node:
        self._enter()
        self.blank()
        child = self.parse_or()
        self.blank()
        if not self.lit(")"):
            raise ParseError("expected a ')' token", self.i)
        self._leave()
        return child

    def parse_check(self) -> ast.Node:
        self._enter()
        self.blank()
        pos = self.i
        try:
            if self.lit("("):
                return self.parse_embedded()
            if self.rgx(_RE_FIELD):
                left = self.parse_field_remainder(self.last, pos)
                return self.parse_condition(left, pos)
            if self.lit_list(TRANSFORMERS):
                self.blank()
                left = self.parse_transformer_remainder(self.last[:-1], pos)
                return self.parse_condition(left, pos)
            if self.rgx(_RE_IDENT):
                return ast.Identifier(pos, name=self.last)
            raise ParseError("expected a '(' token, a field check, or an identifier", self.i)
        finally:
            self._leave()

    def parse_field_remainder(self, name: str, pos: int) -> ast.FieldRef:
        field = ast.FieldRef(pos, name=name)
        if self.lit("["):
            if not self.quoted() and not self.rgx(_RE_FIELD_ARG_BARE):
                raise ParseError("expected a valid field argument: a quoted string or a bare string", self.i)
            field.arg = self.last
            if not self.lit("]"):
                raise ParseError("expected a ']' token", self.i)
        return field

    def parse_transformer_arg(self) -> ast.Node | None:
        self.blank()
        pos = self.i
        if self.lit_list(TRANSFORMERS):
            self.blank()
            return self.parse_transformer_remainder(self.last[:-1], pos)
        if self.rgx(_RE_FIELD):
            return self.parse_field_remainder(self.last, pos)
        if self.quoted():
            return ast.Literal(pos, value=self.last)
        return None

    def parse_transformer_remainder(self, name: str, pos: int) -> ast.Transform:
        self._enter()
        args: list[ast.Node] = []
        arg = self.parse_transformer_arg()
        if arg is None:
            raise ParseError("expected a field or a nested valid transformer: "
                             + _quoted_list(supported_transformers()), self.i)
        args.append(arg)
        self.blank()
        while self.lit(","):
            arg = self.parse_transformer_arg()
            if arg is None:
                raise ParseError("expected a field, a quoted string or a nested valid transformer", self.i)
            args.append(arg)
            self.blank()
        if not self.lit(")"):
            raise ParseError("expected a ')' token closing the transformer", self.i)
        self._leave()
        return ast.Transform(pos, name=name, args=args)

    def parse_condition(self, left: ast.Node, pos: int) -> ast.Check:
        self.blank()
        op_pos = self.i
        if self.lit_list(UNARY_OPS):
            return ast.Check(pos, left=left, op=self.last.strip())
        if self.lit_list(NUM_OPS):
            op = self.last
            right = self.parse_num_value()
        elif self.lit_list(STR_OPS):
            op = self.last.strip()
            save = self.i
            self.blank()
            if self.lit_list(MODIFIERS):
                modifier = self.last
                if self.i < self.n and (self.s[self.i] in _BLANKS or self.s[self.i] == "("):
                    right = self.parse_list_value()
                    return ast.Check(pos, left=left, op=op, right=right, modifier=modifier)
            self.i = save
            right = self.parse_str_value(False)
        elif self.lit_list(LIST_OPS):
            op = self.last
            right = self.parse_list_value()
        else:
            self.i = op_pos
            raise ParseError("expected a valid check operator: one of "
                             + _quoted_list(supported_operators()), self.i)
        return ast.Check(pos, left=left, op=op, right=right)

    def try_transformer_or_val(self) -> ast.Node | None:
        self.blank()
        pos = self.i
        if self.lit(VAL):
            self.blank()
            fpos = self.i
            if not self.rgx(_RE_FIELD):
                raise ParseError("expected a field within 'val' transformer", self.i)
            child = self.parse_field_remainder(self.last, fpos)
            self.blank()
            if not self.lit(")"):
                raise ParseError("expected a ')' token closing the transformer", self.i)
            return ast.Transform(pos, name="val", args=[child])
        if self.lit_list(TRANSFORMERS):
            self.blank()
            return self.parse_transformer_remainder(self.last[:-1], pos)
        return None

    def parse_num_value(self) -> ast.Node:
        self.blank()
        pos = self.i
        res = self.try_transformer_or_val()
        if res is not None:
            return res
        if self.rgx(_RE_HEX) or self.rgx(_RE_NUM):
            return ast.Value(pos, value=self.last)
        raise ParseError("expected a number value or a field with a valid transformer: "
                         + _quoted_list(supported_transformers()), self.i)

    def parse_str_value(self, no_transformer: bool) -> ast.Node:
        self.blank()
        pos = self.i
        if not no_transformer:
            res = self.try_transformer_or_val()
            if res is not None:
                return res
        if self.quoted() or self.rgx(_RE_BARE):
            return ast.Value(pos, value=self.last)
        if no_transformer:
            raise ParseError("expected a string value", self.i)
        raise ParseError("expected a string value or a field with a valid transformer: "
                         + _quoted_list(supported_transformers()), self.i)

    def parse_list_value(self) -> ast.Node:
        self.blank()
        pos = self.i
        if self.lit("("):
            values: list[str] = []
            positions: list[int] = []
            self.blank()
            vpos = self.i
            if self.quoted() or self.rgx(_RE_BARE):
                values.append(self.last)
                positions.append(vpos)
                self.blank()
                while self.lit(","):
                    self.blank()
                    vpos = self.i
                    if not (self.quoted() or self.rgx(_RE_BARE)):
                        raise ParseError("expected a string value", self.i)
                    values.append(self.last)
                    positions.append(vpos)
                    self.blank()
            if not self.lit(")"):
                raise ParseError("expected a ')' token", self.i)
            return ast.ListValue(pos, values=values, positions=positions)
        res = self.try_transformer_or_val()
        if res is not None:
            return res
        if self.rgx(_RE_IDENT):
            return ast.ListValue(pos, values=[self.last], positions=[pos])
        raise ParseError("expected a list, an identifier, or a field with a valid transformer: "
                         + _quoted_list(supported_transformers()), self.i)


def parse(text: str, max_depth: int = MAX_DEPTH) -> ast.Node:
    return Parser(text, max_depth).parse()
