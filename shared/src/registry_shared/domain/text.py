"""Text that reaches users or other processes (rejection reasons, event fields): always printable.

Archive member names are decoded with `surrogateescape` (tarfile) or cp437 (zipfile), so they may hold
control characters, bidi overrides or lone surrogates. A lone surrogate makes any JSON encoder refuse
the whole document, so a reason quoting one would lose the event that carries it.
"""
from __future__ import annotations


def printable(value: str, replacement: str = "?") -> str:
    """`value` with every non-printable character replaced: controls, format characters (bidi overrides),
    separators other than the space, and lone surrogates (what an undecodable byte becomes)."""
    if value.isprintable():
        return value
    return "".join(ch if ch.isprintable() else replacement for ch in value)
