"""Languages: the Spanish catalog, locale-aware numbers, choosing a language, catalog freshness."""

from __future__ import annotations

import io
import re
import string
from pathlib import Path

import pytest

from engine.errors import UsageError
from engine.i18n import DOMAIN, LOCALE_DIR, available_languages, language, resolve_language

PO = LOCALE_DIR / "es" / "LC_MESSAGES" / f"{DOMAIN}.po"
MO = PO.with_suffix(".mo")


def test_catalog_entries_round_trip() -> None:
    es, en = language("es"), language("en")
    assert es._("Accuracy") == "Precisión" and es._("Loss") == "Pérdida"
    assert es._("Frozen layers and fine-tuning") == "Capas congeladas y ajuste fino"
    assert en._("Accuracy") == "Accuracy"
    assert es._("a sentence nobody translated") == "a sentence nobody translated"
    assert es.ngettext("{n} run.", "{n} runs.", 1) == "{n} ejecución."
    assert es.ngettext("{n} run.", "{n} runs.", 3) == "{n} ejecuciones."


def test_numbers_follow_the_language() -> None:
    es, en = language("es"), language("en")
    assert es.percent(0.6765) == "67,65 %"
    assert en.percent(0.6765) == "67.65 %"
    assert es.integer(2_122_186) == "2.122.186" and en.integer(2_122_186) == "2,122,186"
    assert es.number(20.54, 1) == "20,5" and en.number(20.54, 1) == "20.5"
    assert es.percent(None) == "–"


def test_unknown_language_is_a_usage_error_listing_the_available_ones() -> None:
    assert available_languages() == ["en", "es"]
    with pytest.raises(UsageError, match=r"unknown language 'fr'; available: en, es"):
        resolve_language("fr")
    assert resolve_language("ES") == "es" and resolve_language("es_MX") == "es"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "en"),
        ({"LANG": "es_ES.UTF-8"}, "es"),
        ({"LANG": "es_ES.UTF-8", "LC_ALL": "C"}, "en"),  # LC_ALL wins, and C means English
        ({"LANG": "en_US.UTF-8", "LC_ALL": "es_AR.UTF-8"}, "es"),
        ({"LANG": "de_DE.UTF-8"}, "en"),  # no German catalog: English
    ],
)
def test_language_from_the_locale(
    env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_language(None) == expected
    assert language(None).code == expected


def test_compiled_catalog_is_up_to_date_with_the_po() -> None:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(PO, "rb") as fh:
        catalog = read_po(fh, locale="es", domain=DOMAIN)
    assert not catalog.fuzzy, "the .po header is marked fuzzy: pybabel compile would skip it"
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    assert buffer.getvalue() == MO.read_bytes(), "run `make i18n` (the .mo is stale)"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _tags(text: str) -> list[str]:
    return sorted(re.findall(r"</?[brd]>", text))


def test_every_marked_string_is_translated_with_the_same_placeholders() -> None:
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    with open(PO, "rb") as fh:
        catalog = read_po(fh, locale="es", domain=DOMAIN)
    engine_dir = Path(__file__).resolve().parent.parent / "engine"
    extracted = {
        message for _file, _line, message, _comments, _context in extract_from_dir(engine_dir)
    }
    assert extracted, "nothing extracted: the extraction itself is broken"
    for message in extracted:
        key = message if isinstance(message, str) else message[0]
        entry = catalog.get(key)
        assert entry is not None and entry.string, f"not in the Spanish catalog: {key!r}"
        originals = [message] if isinstance(message, str) else list(message)
        translations = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        for text in translations:
            assert _fields(text) == _fields(originals[-1]), key
            # Emphasis tags of the lessons (<b>, <r>, <d>) travel with the words.
            assert _tags(text) == _tags(originals[-1]), key


def test_a_phrase_is_its_english_text_and_keeps_template_and_values() -> None:
    import copy
    import json
    import pickle

    from engine.i18n import N_, Phrase

    clause = Phrase(N_(" (floor of {exact:.2f})"), exact=7 / 3)
    line = Phrase("{n:,} weights{note}", n=4096, note=clause)
    assert (
        line == "4,096 weights (floor of 2.33)"
        and json.dumps(line) == '"4,096 weights (floor of 2.33)"'
    )
    for twin in (copy.deepcopy(line), pickle.loads(pickle.dumps(line))):
        assert isinstance(twin, Phrase) and twin == line
        assert twin.template == "{n:,} weights{note}" and twin.values["n"] == 4096
        assert (
            isinstance(twin.values["note"], Phrase) and twin.values["note"].values["exact"] == 7 / 3
        )
