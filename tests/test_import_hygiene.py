"""The architecture's import rules (DESIGN.md), checked in fresh interpreters:

- the TUI never imports TensorFlow or Keras (it drives the engine as a child process);
- engine/ and export/ never import textual (they stay headless).
"""

from __future__ import annotations

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


@pytest.mark.parametrize("package", ["engine", "export"])
def test_headless_packages_import_without_textual(package: str) -> None:
    if not (ROOT / package / "__init__.py").is_file():
        pytest.skip(f"{package}/ is not there yet")
    result = probe([package], ["textual"])
    assert result["present"] == [], result
    assert result["failed"] == {}, result
    assert result["imported"], result
