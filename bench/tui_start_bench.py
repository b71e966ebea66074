"""Start-up bench: cnnlab's first frame against a minimal Textual app, timed in turns in tmux.

Each round launches, one after the other (the order alternates), (a) a minimal Textual app
(Header, Static, Footer) and (b) `python -m tui --data synthetic` on an empty temp runs folder,
each alone in a detached tmux session of 120x40 on a tmux server of the bench's own. Both go
through the same small runner, which measures both the same way:

- frame: the process's age (Linux /proc, so interpreter start-up included) when Textual hands
  the first frame to the terminal (the first `App._display` that writes), wrapped in the runner;
- visible: from launching the tmux session to the app's text showing in the pane (polled every
  20 ms, so coarser, and it includes tmux's own start);
- cnnlab's own `CNNLAB_TIMING` figures (its first frame and "settings form ready").

Then it sends ctrl+q and waits for the app to end. It prints every round, the median and the
worst of each, and the ratio cnnlab / minimal (target: at most 1.5).

Bytecode: like an installed app, both write and use `__pycache__` (the bench drops
PYTHONDONTWRITEBYTECODE for them; an unmeasured launch of each warms the caches first). With
`--no-bytecode` every launch compiles cnnlab's modules from source instead.

Usage: .venv/bin/python bench/tui_start_bench.py [--rounds N] [--runs-dir DIR] [--no-bytecode]
Not a test: it takes about 4 s a round.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (120, 40)
TARGET = 1.5
# A tmux server of the bench's own, so no one else's sessions or settings play a part.
SOCKET = f"cnnlab-start-bench-{os.getpid()}"

MINIMAL_APP = '''\
"""Minimal Textual app for the start-up bench: Header, Static, Footer."""

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static


class Minimal(App[None]):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("minimal textual app")
        yield Footer()


if __name__ == "__main__":
    Minimal().run()
'''

# Runs either app with the first-frame probe in place: `runner.py TIMING_FILE minimal|tui [ARGS]`.
RUNNER = '''\
"""Start an app with a probe that notes the process's age at Textual's first frame."""

import os
import runpy
import sys

from textual.app import App


def process_age():
    with open("/proc/self/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    with open("/proc/uptime", encoding="ascii") as fh:
        uptime = float(fh.read().split()[0])
    return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")


timing, target, args = sys.argv[1], sys.argv[2], sys.argv[3:]
display = App._display


def first_display(self, screen, renderable):
    writes = renderable is not None and not self._batch_count and not self.is_headless
    display(self, screen, renderable)
    if writes:
        App._display = display
        with open(timing, "a", encoding="utf-8") as fh:
            fh.write(f"frame {process_age():.3f}\\n")


App._display = first_display
if target == "tui":
    sys.argv = ["tui", *args]
    runpy.run_module("tui", run_name="__main__", alter_sys=True)
else:
    sys.argv = [target, *args]
    runpy.run_path(target, run_name="__main__")
'''


@dataclass
class Sample:
    """One launch: first frame (probe), first visible text (polled), cnnlab's own figures."""

    frame: float
    visible: float
    own_frame: float | None = None
    ready: float | None = None


def tmux(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=check
    )


def launch(name: str, command: str, marker: str, timing: Path, settle: float) -> Sample:
    """Run `command` alone in a tmux session, wait for `marker` on screen, quit, read timing."""
    timing.unlink(missing_ok=True)
    started = time.perf_counter()
    tmux(
        "new-session", "-d", "-s", name, "-x", str(SIZE[0]), "-y", str(SIZE[1]),
        f"exec {command}",
    )  # fmt: skip
    visible = None
    screen = ""
    try:
        deadline = started + 30
        while time.perf_counter() < deadline:
            screen = tmux("capture-pane", "-p", "-t", name, check=False).stdout
            if marker in screen:
                visible = time.perf_counter() - started
                break
            time.sleep(0.02)
        if visible is None:
            raise RuntimeError(f"{name}: {marker!r} never showed:\n{screen}")
        time.sleep(settle)  # let deferred work (cnnlab's settings form) finish before quitting
        tmux("send-keys", "-t", name, "C-q")
        while tmux("has-session", "-t", name, check=False).returncode == 0:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{name} did not quit")
            time.sleep(0.05)
    finally:
        tmux("kill-session", "-t", name, check=False)
    return parse_timing(timing.read_text(encoding="utf-8"), visible)


def parse_timing(text: str, visible: float) -> Sample:
    """Read the probe's `frame X` line and cnnlab's 'first frame after X s[, ... Y s]' line."""
    frame = own = ready = None
    for line in text.splitlines():
        if line.startswith("frame "):
            frame = float(line.split()[1])
        elif "first frame after " in line:
            own = float(line.split("first frame after ")[1].split()[0])
            if "ready after " in line:
                ready = float(line.split("ready after ")[1].split()[0])
    if frame is None:
        raise RuntimeError(f"no first frame noted in {text!r}")
    return Sample(frame, visible, own, ready)


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} s, worst {max(values):.3f} s"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs-dir", type=Path, default=None, help="default: an empty temp folder")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds on screen before quitting")
    ap.add_argument("--no-bytecode", action="store_true", help="compile from source each time")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is needed")

    work = Path(tempfile.mkdtemp(prefix="cnnlab-start-bench-"))
    runs_dir = args.runs_dir or work / "runs"
    runs_dir.mkdir(exist_ok=True)
    (work / "minimal_app.py").write_text(MINIMAL_APP, encoding="utf-8")
    (work / "runner.py").write_text(RUNNER, encoding="utf-8")
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    unset = "" if args.no_bytecode else "-u PYTHONDONTWRITEBYTECODE "
    prefix = f"env {unset}" + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    runner = f"{shlex.quote(sys.executable)} {work / 'runner.py'}"
    apps = {
        "minimal": (
            f"{prefix} {runner} {work / 'minimal.txt'} {work / 'minimal_app.py'}",
            "minimal textual app",
            work / "minimal.txt",
        ),
        "cnnlab": (
            f"{prefix} CNNLAB_TIMING={work / 'cnnlab.txt'} {runner} {work / 'cnnlab.txt'} tui"
            f" --data synthetic --runs-dir {shlex.quote(str(runs_dir))}",
            "Experiments",
            work / "cnnlab.txt",
        ),
    }
    try:
        run_rounds(apps, args.rounds, args.settle)
    finally:
        tmux("kill-server", check=False)
        shutil.rmtree(work, ignore_errors=True)


def run_rounds(apps: dict[str, tuple[str, str, Path]], rounds: int, settle: float) -> None:
    # One unmeasured launch each first: the page and bytecode caches are warm for every round.
    for name, (command, marker, timing) in apps.items():
        launch(f"warm-{name}", command, marker, timing, 0.2)

    samples: dict[str, list[Sample]] = {name: [] for name in apps}
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("round  minimal   cnnlab  ratio | visible: minimal  cnnlab | cnnlab's own: frame  ready")
    for round_no in range(1, rounds + 1):
        # Alternate who goes first so neither always runs right after the other.
        order = list(apps) if round_no % 2 else list(reversed(apps))
        for name in order:
            command, marker, timing = apps[name]
            samples[name].append(launch(f"{name}-{round_no}", command, marker, timing, settle))
        m, c = samples["minimal"][-1], samples["cnnlab"][-1]
        own = f"{c.own_frame:.3f}" if c.own_frame is not None else "  -  "
        ready = f"{c.ready:.3f}" if c.ready is not None else "  -  "
        print(
            f"{round_no:>5} {m.frame:>7.3f}s {c.frame:>7.3f}s {c.frame / m.frame:>6.2f} |"
            f" {m.visible:>15.3f}s {c.visible:>6.3f}s | {own:>18}s {ready}s"
        )

    minimal = [s.frame for s in samples["minimal"]]
    cnnlab = [s.frame for s in samples["cnnlab"]]
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"minimal first frame: {summary(minimal)}")
    print(f"cnnlab  first frame: {summary(cnnlab)}")
    print(f"minimal visible:     {summary([s.visible for s in samples['minimal']])}")
    print(f"cnnlab  visible:     {summary([s.visible for s in samples['cnnlab']])}")
    readies = [s.ready for s in samples["cnnlab"] if s.ready is not None]
    if readies:
        print(f"cnnlab  form ready:  {summary(readies)}")
    ratio = statistics.median(cnnlab) / statistics.median(minimal)
    rounds_ratio = [c / m for c, m in zip(cnnlab, minimal, strict=True)]
    visible = statistics.median(s.visible for s in samples["cnnlab"]) / statistics.median(
        s.visible for s in samples["minimal"]
    )
    print(
        f"ratio cnnlab/minimal, first frame: median {ratio:.2f} (target <= {TARGET}), "
        f"worst round {max(rounds_ratio):.2f}, worst/worst {max(cnnlab) / max(minimal):.2f}; "
        f"visible: median {visible:.2f}"
    )


if __name__ == "__main__":
    main()
