"""Start-up bench: cnnlab's first frame against a minimal Textual app, timed in turns in tmux.

Each round launches, one after the other, (a) a minimal Textual app (Header, Static, Footer;
the bench writes it to a temp folder) and (b) `python -m tui --data synthetic` on an empty temp
runs folder, each alone in a detached tmux session of 120x40. Both measure the same thing the
same way: the process's age (Linux /proc: interpreter start-up included) when the callback that
`App.on_mount` schedules with `call_after_refresh` runs, i.e. once the first frame is drawn.
cnnlab reports it through `CNNLAB_TIMING=FILE`, the minimal app through `BENCH_TIMING=FILE`.
The bench also notes when each app's text first shows in the pane (polled, so coarser) and
cnnlab's "settings form ready" figure. It prints every round, the median and worst of each,
and the ratio cnnlab / minimal (target: median at most 1.5).

Usage: .venv/bin/python bench/tui_start_bench.py [--rounds N] [--runs-dir DIR]
Not a test: it takes about 5 s a round.
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

MINIMAL_APP = '''\
"""Minimal Textual app for the start-up bench: Header, Static, Footer."""

import os

from textual.app import App
from textual.widgets import Footer, Header, Static


def process_age():
    with open("/proc/self/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    with open("/proc/uptime", encoding="ascii") as fh:
        uptime = float(fh.read().split()[0])
    return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")


class Minimal(App):
    def compose(self):
        yield Header()
        yield Static("minimal textual app")
        yield Footer()

    def on_mount(self):
        self.call_after_refresh(self._first_frame)

    def _first_frame(self):
        self.first_frame = process_age()


if __name__ == "__main__":
    app = Minimal()
    app.first_frame = None
    app.run()
    with open(os.environ["BENCH_TIMING"], "a", encoding="utf-8") as fh:
        fh.write(f"first frame after {app.first_frame:.3f} s\\n")
'''


@dataclass
class Sample:
    """One launch: in-process first frame, first visible text (polled), form ready (cnnlab)."""

    first_frame: float
    visible: float
    ready: float | None = None


# A tmux server of the bench's own, so no one else's sessions or settings play a part.
SOCKET = f"cnnlab-start-bench-{os.getpid()}"


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
    """Read 'first frame after X s[, settings form ready after Y s]' from a timing file."""
    line = text.strip().splitlines()[-1]
    first = float(line.split("first frame after ")[1].split()[0])
    ready = None
    if "ready after " in line:
        ready = float(line.split("ready after ")[1].split()[0])
    return Sample(first, visible, ready)


def summary(label: str, values: list[float]) -> str:
    return f"{label}: median {statistics.median(values):.3f} s, worst {max(values):.3f} s"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs-dir", type=Path, default=None, help="default: an empty temp folder")
    ap.add_argument("--settle", type=float, default=1.5, help="seconds on screen before quitting")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is needed")

    work = Path(tempfile.mkdtemp(prefix="cnnlab-start-bench-"))
    runs_dir = args.runs_dir or work / "runs"
    runs_dir.mkdir(exist_ok=True)
    (work / "minimal_app.py").write_text(MINIMAL_APP, encoding="utf-8")
    py = shlex.quote(sys.executable)
    env = {
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    apps = {
        "minimal": (
            f"env {exports} BENCH_TIMING={work / 'minimal.txt'} {py} {work / 'minimal_app.py'}",
            "minimal textual app",
            work / "minimal.txt",
        ),
        "cnnlab": (
            f"env {exports} CNNLAB_TIMING={work / 'cnnlab.txt'} {py} -m tui --data synthetic"
            f" --runs-dir {shlex.quote(str(runs_dir))}",
            "Experiments",
            work / "cnnlab.txt",
        ),
    }
    # One unmeasured launch each first: the page cache holds the modules for every round alike.
    for name, (command, marker, timing) in apps.items():
        launch(f"bench-{os.getpid()}-{name}", command, marker, timing, 0.2)

    samples: dict[str, list[Sample]] = {name: [] for name in apps}
    print(f"{'round':>5} {'minimal':>9} {'cnnlab':>9} {'ratio':>6}   (visible: minimal cnnlab; cnnlab form ready)")
    for round_no in range(1, args.rounds + 1):
        # Alternate who goes first so neither always runs right after the other.
        order = list(apps) if round_no % 2 else list(reversed(apps))
        for name in order:
            command, marker, timing = apps[name]
            samples[name].append(
                launch(f"bench-{os.getpid()}-{name}", command, marker, timing, args.settle)
            )
        m, c = samples["minimal"][-1], samples["cnnlab"][-1]
        ready = f"{c.ready:.3f}" if c.ready is not None else "-"
        print(
            f"{round_no:>5} {m.first_frame:>8.3f}s {c.first_frame:>8.3f}s "
            f"{c.first_frame / m.first_frame:>6.2f}   ({m.visible:.3f} {c.visible:.3f}; {ready})"
        )

    minimal = [s.first_frame for s in samples["minimal"]]
    cnnlab = [s.first_frame for s in samples["cnnlab"]]
    print(summary("minimal first frame", minimal))
    print(summary("cnnlab  first frame", cnnlab))
    readies = [s.ready for s in samples["cnnlab"] if s.ready is not None]
    if readies:
        print(summary("cnnlab  form ready ", readies))
    print(
        summary("minimal visible (polled)", [s.visible for s in samples["minimal"]])
        + "; "
        + summary("cnnlab", [s.visible for s in samples["cnnlab"]])
    )
    ratio = statistics.median(cnnlab) / statistics.median(minimal)
    worst = max(c / m for c, m in zip(cnnlab, minimal, strict=True))
    print(
        f"ratio cnnlab/minimal: median {ratio:.2f} (target <= {TARGET}), "
        f"worst round {worst:.2f}, worst/worst {max(cnnlab) / max(minimal):.2f}"
    )
    tmux("kill-server", check=False)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
