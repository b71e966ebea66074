"""engine.errors.first_line: the one line an error message is cut to, for engine and export."""

from __future__ import annotations

from engine.errors import first_line


def test_first_line_keeps_the_first_non_blank_line() -> None:
    assert first_line(ValueError("\n  bad shape\n  at node 3\n")) == "bad shape"
    assert first_line("onnx checker: W not in graph input\nmore") == (
        "onnx checker: W not in graph input"
    )


def test_first_line_of_an_empty_message_names_the_problem() -> None:
    assert first_line(KeyError()) == "KeyError"
    assert first_line(RuntimeError("   ")) == "RuntimeError"
    assert first_line("") == "unknown problem"


def test_first_line_is_cut_to_its_limit() -> None:
    long = "x" * 300
    assert first_line(long) == "x" * 199 + "…" and len(first_line(long)) == 200
    assert first_line(long, limit=10) == "x" * 9 + "…"
    assert first_line(long, limit=None) == long
