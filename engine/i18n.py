"""Languages: gettext catalogs kept in the repo, and numbers written the way the locale writes them.

Catalogs live in `engine/locale/<lang>/LC_MESSAGES/cnnlab.po` (compiled `.mo` beside it, committed
so an install needs no build step; `make i18n` re-extracts and recompiles them with babel).
English is the source language and the default. The language comes from `--lang`, else from the
`LC_ALL` / `LC_MESSAGES` / `LANG` environment variables, else English.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import UsageError

# gettext is imported when a catalog is first loaded: the TUI starts in English without it.
if TYPE_CHECKING:
    import gettext

DOMAIN = "cnnlab"
LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT_LANGUAGE = "en"
LOCALE_ENV = ("LC_ALL", "LC_MESSAGES", "LANG")


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown (the TUI's `_`)."""
    return message


class Phrase(str):
    """An English sentence built from a template and values, that keeps both.

    It *is* the English text, so JSON, the CLI and tests see plain English. A view in another
    language translates `template` and formats `values` its own way (the TUI's `phrase`):
    `Phrase(N_("{n:,} weights"), n=4096)` is "4,096 weights", and "4.096 pesos" in Spanish.
    Values are numbers (format specs such as `:,` live in the template, so the number is
    grouped the locale's way), plain strings (shown as they are: names, shapes) or other
    Phrases (clauses, translated in turn). A `str` subclass so the lines of an explanation stay
    `list[str]` for every caller, ONNX explainers and JSON output included.
    """

    template: str
    values: dict[str, object]

    def __new__(cls, template: str, **values: object) -> Phrase:
        text = super().__new__(cls, template.format(**values))
        text.template = template
        text.values = values
        return text

    def __getnewargs_ex__(self) -> tuple[tuple[str], dict[str, object]]:
        # copy and pickle rebuild it from the template and values, not from the English text
        return (self.template,), dict(self.values)


def available_languages() -> list[str]:
    """English plus every language with a compiled catalog, sorted."""
    found = {DEFAULT_LANGUAGE}
    if LOCALE_DIR.is_dir():
        for path in LOCALE_DIR.iterdir():
            if (path / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file():
                found.add(path.name)
    return sorted(found)


def _from_environment() -> str:
    """The language of the first locale variable that is set ("es_ES.UTF-8" → "es")."""
    available = available_languages()
    for name in LOCALE_ENV:
        value = os.environ.get(name, "")
        if not value:
            continue
        code = value.split(".")[0].split("@")[0].split("_")[0].lower()
        # The first variable that is set decides, as in POSIX; C/POSIX mean English.
        return code if code in available else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def resolve_language(requested: str | None = None) -> str:
    """`requested` if it is available (else a usage error listing the ones that are), or the locale's."""
    if requested is None:
        return _from_environment()
    code = requested.strip().lower().replace("-", "_").split("_")[0]
    available = available_languages()
    if code not in available:
        raise UsageError(f"unknown language {requested!r}; available: {', '.join(available)}")
    return code


@dataclass(frozen=True)
class Language:
    """One language's translations and number formats. `_` is gettext for that language."""

    code: str
    translations: gettext.NullTranslations = field(repr=False, compare=False)

    def _(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def number(self, value: float, digits: int = 2) -> str:
        """A decimal number with `digits` decimals and the locale's separators (0,68 in Spanish)."""
        from babel.numbers import format_decimal

        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        return str(format_decimal(value, format=pattern, locale=self.code))

    def integer(self, value: int) -> str:
        """A whole number with the locale's grouping (2,122,186 / 2.122.186)."""
        return self.number(int(value), 0)

    def percent(self, fraction: float | None, digits: int = 2) -> str:
        """A fraction as a percentage, "67.65 %" / "67,65 %"; a dash when unknown."""
        if fraction is None:
            return "–"
        return f"{self.number(float(fraction) * 100, digits)} %"


def language(code: str | None = None) -> Language:
    """The `Language` for `code`, or for the locale when None (see `resolve_language`)."""
    return _load(resolve_language(code))


@cache
def _load(code: str) -> Language:
    import gettext

    translations = gettext.translation(
        DOMAIN, localedir=str(LOCALE_DIR), languages=[code], fallback=True
    )
    return Language(code, translations)
