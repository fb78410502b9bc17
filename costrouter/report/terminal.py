r"""Text from outside (ids from span files and stores) made safe to print to an operator's terminal.

A session id is whatever a caller or a span file says it is. Printed raw, ``\x1b]0;…\x07``
sets the terminal's title, ``\x1b]52;c;…`` writes the clipboard, ``\x1b[2J`` clears the
screen, and ``[link=…]`` or ``[/]`` is rich markup. :func:`printable` escapes every character
that is not shown as itself (Unicode categories Cc, Cf, Zl, Zp, Cs: controls, bidirectional
and zero-width marks, line separators, lone surrogates) as ``\xNN`` / ``\uNNNN``;
:func:`cell` wraps the result in a rich ``Text``, which is never read as markup. Every printer
of ids (``costrouter report``, ``budget status``/``top``/``reset``) goes through them.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from rich.text import Text

__all__ = ["cell", "printable"]

_HIDDEN: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escaped(character: str) -> str:
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: str) -> str:
    r"""``value`` with every control, format and separator character escaped (``\x1b``, ``\u202e``)."""
    if value.isprintable():  # the common case: nothing to escape (spaces count as printable here)
        return value
    return "".join(
        _escaped(character) if unicodedata.category(character) in _HIDDEN else character for character in value
    )


def cell(value: str) -> Text:
    """``value`` for a rich table or ``console.print``: escaped, and never interpreted as markup."""
    return Text(printable(value))
