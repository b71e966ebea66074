"""The TUI's language: gettext `_` and the number format of the language the app runs in.

One language per process, chosen when the app is built (`cnnlab --lang`, else LC_ALL /
LC_MESSAGES / LANG, else English) and read wherever a string is shown. Strings are translated
when they are shown, never at import time, so the module-level English texts (bindings, column
names) are marked with `N_` for extraction and passed through `_` on display. The catalogs are
the engine's (`engine/locale`); loading one costs a file read, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown (with `_`)."""
    return message


def number(value: float, digits: int) -> str:
    """A decimal number in the app's language: 69.37 / 69,37."""
    if _code == "en":
        return f"{value:.{digits}f}"
    return current().number(value, digits)
