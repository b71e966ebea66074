"""The TUI's language: gettext `_` and the number format of the language the app runs in.

One language per process, chosen when the app is built (`cnnlab --lang`, else LC_ALL /
LC_MESSAGES / LANG, else English) and read wherever a string is shown. Strings are translated
when they are shown, never at import time, so the module-level English texts (bindings, column
names) are marked with `N_` for extraction and passed through `_` on display. The catalogs are
the engine's (`engine/locale`); loading one costs a file read, on first use.

Numbers go through `number` (fixed decimals), `integer` (counts with thousands separators),
`significant` and `formatted` (any format spec): English keeps Python's own formatting, other
languages get their decimal mark and grouping from babel (69,37 · 1.234.567).
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.i18n import Language

_code = "en"


def set_language(code: str | None) -> str:
    """Resolve `code` (None: from the locale) and make it the app's language; the code chosen."""
    global _code
    from engine.i18n import resolve_language

    _code = resolve_language(code)
    return _code


def language_code() -> str:
    return _code


def current() -> Language:
    from engine.i18n import language

    return language(_code)


def _(message: str) -> str:
    """`message` in the app's language (English needs no catalog)."""
    if _code == "en" or not message:
        return message
    return current()._(message)


def pgettext(context: str, message: str) -> str:
    """`message` in the app's language, where the same English word needs another translation
    in `context` (a phase "frozen" is not a layer's "frozen")."""
    if _code == "en" or not message:
        return message
    return current().translations.pgettext(context, message)


def phrase(text: str) -> str:
    """A line the engine wrote, in the app's language: an `engine.i18n.Phrase` gets its template
    translated and its numbers formatted the language's way (clauses in turn); plain text goes
    through `_`. English is the text itself."""
    if _code == "en" or not text:
        return text
    from engine.i18n import Phrase

    if not isinstance(text, Phrase):
        return _(text)
    # Plain string values are names and shapes, shown as they are; only Phrases are translated.
    values = {k: phrase(v) if isinstance(v, Phrase) else v for k, v in text.values.items()}
    return _LocaleFormatter().format(_(text.template), **values)


class _LocaleFormatter(string.Formatter):
    """`str.format` whose numbers use the language's decimal mark and grouping (`formatted`)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return formatted(value, format_spec)
        return str(super().format_field(value, format_spec))


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown (with `_`)."""
    return message


def number(value: float, digits: int, *, signed: bool = False) -> str:
    """A decimal number in the app's language: 69.37 / 69,37 (`signed`: +0.12 / +0,12)."""
    if _code == "en":
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    text = current().number(value, digits)
    return "+" + text if signed and not text.startswith("-") else text


def formatted(value: float, spec: str) -> str:
    """`format(value, spec)` with the language's decimal mark and grouping: for the formats
    `number` cannot write (significant figures, exponents): 1,234.5 / 1.234,5, 1.2e-05 / 1,2e-05."""
    text = format(value, spec)
    if _code == "en":
        return text
    from babel.numbers import get_decimal_symbol, get_group_symbol

    marks: dict[str, str | int | None] = {
        ".": get_decimal_symbol(_code),
        ",": get_group_symbol(_code),
    }
    return text.translate(str.maketrans(marks))


def decimal_mark() -> str:
    """The language's decimal mark: "." / ","."""
    if _code == "en":
        return "."
    from babel.numbers import get_decimal_symbol

    return str(get_decimal_symbol(_code))


def significant(value: float, digits: int) -> str:
    """`value` to `digits` significant figures (Python's `g`): 0.0123 / 0,0123."""
    return formatted(value, f".{digits}g")


def integer(value: int) -> str:
    """A count with the language's thousands separator: 1,234,567 / 1.234.567."""
    if _code == "en":
        return f"{int(value):,}"
    return current().integer(int(value))
