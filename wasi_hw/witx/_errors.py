"""Located errors of the WITX pipeline.

Every stage (lexing, reading, parsing, resolution, lowering) reports a problem as a
`WitxError` carrying a `Location`. ``str(err)`` is ``file:line:col: message`` followed by the
offending source line and a caret under the column, so the first line alone is a complete,
greppable diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Location", "WitxError"]


@dataclass(frozen=True, slots=True)
class Location:
    """A position in a WITX source: 1-based line and column, and the line's text."""

    path: str
    line: int
    col: int
    text: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class WitxError(Exception):
    """A malformed or invalid WITX input, located in its source."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(self._format())

    def _format(self) -> str:
        loc = self.location
        if loc is None:
            return self.message
        head = f"{loc}: {self.message}"
        if not loc.text:
            return head
        line = loc.text.rstrip("\n").expandtabs(1)
        return f"{head}\n    {line}\n    {' ' * (loc.col - 1)}^"
