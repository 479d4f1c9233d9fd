"""Stage 1: WITX text → S-expressions with source locations.

The lexer knows the WebAssembly text-format tokens that WITX uses: ``(``, ``)``, ``$ids``,
keywords (``u32``, ``@witx``, ``@interface``), ``"strings"`` (with ``\\n \\t \\" \\\\ \\xx
\\u{..}`` escapes) and integers; ``;;`` line comments and ``(; ... ;)`` block comments are
skipped; ``;;;`` doc comments are kept and attached to the next expression read.
Pure: takes text, returns `SList`/`SAtom` trees, raises `WitxError` located at the fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._errors import Location, WitxError

__all__ = ["SAtom", "SList", "SExpr", "read_sexprs"]


@dataclass(slots=True)
class SAtom:
    """One token: ``kind`` is ``"id"`` (``$x``, value without the ``$``), ``"keyword"``,
    ``"string"`` or ``"int"``."""

    kind: str
    value: str | int
    loc: Location
    docs: str = ""

    def describe(self) -> str:
        if self.kind == "id":
            return f"`${self.value}`"
        if self.kind == "string":
            return f'string "{self.value}"'
        return f"`{self.value}`"


@dataclass(slots=True)
class SList:
    """A parenthesised list of expressions; ``loc`` is its opening parenthesis."""

    items: list[SExpr]
    loc: Location
    docs: str = ""
    end: Location | None = field(default=None)

    def head(self) -> str | None:
        """The keyword the list starts with, or None."""
        if self.items and isinstance(self.items[0], SAtom) and self.items[0].kind == "keyword":
            return str(self.items[0].value)
        return None

    def describe(self) -> str:
        h = self.head()
        return f"`({h} ...)`" if h else "a list"


SExpr = SAtom | SList

_IDCHARS = r"0-9A-Za-z!#$%&'*+\-./:<=>?@\\^_`|~"
_TOKEN = re.compile(
    rf"""
    (?P<ws>[ \t\r\n]+)
  | (?P<doc>;;;[^\n]*)
  | (?P<comment>;;[^\n]*)
  | (?P<blockopen>\(;)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<string>")
  | (?P<atom>[{_IDCHARS}]+)
    """,
    re.VERBOSE,
)
_INT = re.compile(r"[+-]?(0x[0-9A-Fa-f](_?[0-9A-Fa-f])*|[0-9](_?[0-9])*)\Z")
MAX_DEPTH = 64  # bounds the parser's recursion; real specs nest < 10 deep
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


class _Source:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.lines = text.split("\n")
        self._starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._starts.append(i + 1)

    def loc(self, offset: int) -> Location:
        lo, hi = 0, len(self._starts) - 1
        while lo < hi:  # last line start <= offset
            mid = (lo + hi + 1) // 2
            if self._starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return Location(self.path, lo + 1, offset - self._starts[lo] + 1, self.lines[lo])


def _read_string(src: _Source, start: int) -> tuple[str, int]:
    """Read a string literal whose opening quote is at ``start``; return (value, end)."""
    text = src.text
    out: list[str] = []
    i = start + 1
    while True:
        if i >= len(text) or text[i] == "\n":
            raise WitxError("unterminated string literal", src.loc(start))
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt == "u":
                m = re.compile(r"u\{([0-9A-Fa-f]{1,6})\}").match(text, i + 1)
                if m and int(m.group(1), 16) <= 0x10FFFF:
                    out.append(chr(int(m.group(1), 16)))
                    i = m.end()
                    continue
            elif re.fullmatch(r"[0-9A-Fa-f]{2}", text[i + 1 : i + 3]):
                out.append(chr(int(text[i + 1 : i + 3], 16)))
                i += 3
                continue
            raise WitxError("invalid escape sequence in string literal", src.loc(i))
        out.append(ch)
        i += 1


def _skip_block_comment(src: _Source, start: int) -> int:
    depth, i, text = 0, start, src.text
    while i < len(text):
        if text.startswith("(;", i):
            depth, i = depth + 1, i + 2
        elif text.startswith(";)", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise WitxError("unterminated block comment", src.loc(start))


def read_sexprs(text: str, path: str = "<input>") -> list[SExpr]:
    """Read every top-level expression of ``text`` (a WITX document)."""
    src = _Source(text, path)
    stack: list[SList] = []
    top: list[SExpr] = []
    docs: list[str] = []
    pos = 0

    def emit(node: SExpr) -> None:
        nonlocal docs
        if docs:
            node.docs = "\n".join(docs)
            docs = []
        (stack[-1].items if stack else top).append(node)

    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise WitxError(f"unexpected character {text[pos]!r}", src.loc(pos))
        kind = m.lastgroup
        if kind == "ws" or kind == "comment":
            pos = m.end()
        elif kind == "doc":
            line = m.group()[3:]
            docs.append(line[1:] if line.startswith(" ") else line)
            pos = m.end()
        elif kind == "blockopen":
            pos = _skip_block_comment(src, pos)
        elif kind == "lparen":
            if len(stack) >= MAX_DEPTH:
                raise WitxError(f"expressions nested deeper than {MAX_DEPTH} levels", src.loc(pos))
            node = SList([], src.loc(pos))
            emit(node)
            stack.append(node)
            pos = m.end()
        elif kind == "rparen":
            if not stack:
                raise WitxError("unexpected `)` with no matching `(`", src.loc(pos))
            stack.pop().end = src.loc(pos)
            docs = []  # a doc comment before `)` documents nothing
            pos = m.end()
        elif kind == "string":
            value, pos2 = _read_string(src, pos)
            emit(SAtom("string", value, src.loc(pos)))
            pos = pos2
        else:
            word = m.group()
            loc = src.loc(pos)
            if word.startswith("$"):
                if len(word) == 1:
                    raise WitxError("empty identifier: `$` must be followed by a name", loc)
                emit(SAtom("id", word[1:], loc))
            elif _INT.match(word):
                emit(SAtom("int", int(word.replace("_", ""), 0), loc))
            elif word[0].isdigit() or word[0] in "+-":
                raise WitxError(f"invalid number `{word}`", loc)
            else:
                emit(SAtom("keyword", word, loc))
            pos = m.end()
    if stack:
        raise WitxError("unclosed `(`: missing `)` before end of file", stack[-1].loc)
    return top
