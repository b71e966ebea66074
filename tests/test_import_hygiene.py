"""The architecture's import rules (DESIGN.md), checked in fresh interpreters and in the sources:

- the TUI never imports TensorFlow or Keras (it drives the engine as a child process);
- engine/ and export/ never import textual (they stay headless);
- layers point one way, tui → export → engine: engine/ imports neither export/ nor tui/ (nor the
  `cnnlab` CLI root above both), export/ imports neither tui/ nor the root, and the root wires
  engine/ and export/ without the TUI.

The subprocess probes see what importing a module pulls in; the source scan also sees imports
deferred into functions, which only run when that code path does.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import importlib, json, pkgutil, sys
imported, failed = [], {}
for package in PACKAGES:
    pkg = importlib.import_module(package)
    names = [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")]
    for name in names:
        if name.endswith("__main__"):
            continue  # running it would start the program
        try:
            importlib.import_module(name)
            imported.append(name)
        except Exception as exc:  # a module that cannot import is reported, not hidden
            failed[name] = repr(exc)
print(json.dumps({"imported": imported, "failed": failed,
                  "present": sorted(m for m in FORBIDDEN if m in sys.modules)}))
"""


def probe(packages: list[str], forbidden: list[str]) -> dict[str, object]:
    code = f"PACKAGES = {packages!r}\nFORBIDDEN = {forbidden!r}\n" + _PROBE
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_tui_app_imports_without_tensorflow() -> None:
    code = (
        "import sys, json\n"
        "import tui.app, tui.__main__, tui.engine_client\n"
        "print(json.dumps(sorted(m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == []


def test_no_tui_module_imports_tensorflow() -> None:
    result = probe(["tui"], ["tensorflow", "keras", "tf2onnx"])
    assert result["present"] == [], result
    assert result["failed"] == {}, result
    assert "tui.app" in result["imported"]  # type: ignore[operator]


# package → top-level packages its modules must never import, even lazily
LAYER_RULES = {
    "engine": ("export", "tui", "textual", "cnnlab"),
    "export": ("tui", "textual", "cnnlab"),
    "cnnlab": ("tui", "textual"),  # the CLI root wires engine and export, never the TUI
}


@pytest.mark.parametrize("package", sorted(LAYER_RULES))
def test_importing_a_layer_does_not_pull_in_the_layers_above(package: str) -> None:
    result = probe([package], list(LAYER_RULES[package]))
    assert result["present"] == [], result
    assert result["failed"] == {}, result
    assert result["imported"], result


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import in the source, wherever it sits (module level or inside a
    function), including `importlib.import_module("name")` with a literal name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def test_the_source_scan_sees_lazy_and_dynamic_imports() -> None:
    source = (
        "import os\n"
        "def f():\n"
        "    from export.providers import create_session\n"
        "    import tui.app\n"
        "    return importlib.import_module('export.cli')\n"
    )
    assert [m for _, m in imported_modules(source)] == [
        "os",
        "export.providers",
        "tui.app",
        "export.cli",
    ]


@pytest.mark.parametrize("package", sorted(LAYER_RULES))
def test_no_source_in_a_layer_imports_the_layers_above(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path.read_text()):
            if module.split(".")[0] in LAYER_RULES[package]:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert offenders == []
