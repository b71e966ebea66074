"""onnxruntime execution providers: choose them, open a session quietly, report what loaded.

onnxruntime-gpu lists the TensorRT and CUDA providers whether or not the machine can run them;
a session that tries one without its libraries prints native errors (and onnxruntime's Python
layer prints "EP Error" banners on stdout) and silently falls back to the CPU. So we never trust
the requested list: we read `session.get_providers()` after creation, keep the noise off the
user's screen (and out of `--json` stdout), and say plainly what happened.

The available-provider list and the session constructor are injectable so that tests can
pretend to have a GPU. onnxruntime is imported lazily.
"""

from __future__ import annotations

import argparse
import io
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import CnnlabError, UsageError
from engine.output import capture_fd2

# Short names users type → onnxruntime's provider names.
PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
# What `auto` tries, best first.
AUTO_ORDER: tuple[str, ...] = ("tensorrt", "cuda", "cpu")
PROVIDER_CHOICES: tuple[str, ...] = ("auto", *AUTO_ORDER)

SessionFactory = Callable[
    [Any, Any, list[Any]], Any
]  # (model, options, providers or (name, options))


class ProviderError(CnnlabError):
    """A requested execution provider is not available or did not load."""


def short_name(provider: str) -> str:
    """`CUDAExecutionProvider` → `cuda`; unknown names are returned unchanged."""
    for short, full in PROVIDERS.items():
        if full == provider:
            return short
    return provider


def available_providers() -> list[str]:
    """The providers this onnxruntime build lists (not proof that they can load)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def choose_providers(requested: str, available: Sequence[str] | None = None) -> list[str]:
    """The provider list to give onnxruntime for `requested` (auto, tensorrt, cuda or cpu).

    `auto` keeps the available ones of TensorRT → CUDA → CPU in that order. An explicit request
    for a provider this build does not list is an error, not a silent fallback.
    """
    requested = requested.lower()
    if requested not in PROVIDER_CHOICES:
        raise UsageError(
            f"unknown provider {requested!r}; choose one of {', '.join(PROVIDER_CHOICES)}"
        )
    have = list(available) if available is not None else available_providers()
    if requested == "auto":
        chosen = [PROVIDERS[name] for name in AUTO_ORDER if PROVIDERS[name] in have]
        if not chosen:
            raise ProviderError(
                f"none of TensorRT, CUDA or CPU is available (onnxruntime lists: {', '.join(have)})"
            )
        return chosen
    wanted = PROVIDERS[requested]
    if wanted not in have:
        raise ProviderError(
            f"provider {requested} ({wanted}) is not available in this onnxruntime build "
            f"(available: {', '.join(short_name(p) for p in have) or 'none'}); "
            "use --provider auto to fall back, or see docs/onnx.md for GPU installs"
        )
    # TensorRT hands unsupported subgraphs to CUDA, and both hand the rest to the CPU.
    index = AUTO_ORDER.index(requested)
    return [PROVIDERS[name] for name in AUTO_ORDER[index:] if PROVIDERS[name] in have]


@dataclass(frozen=True)
class TensorRTOptions:
    """TensorRT's own switches, passed only when TensorRT is among the providers tried.

    int8 on a float model needs a calibration table TensorRT does not have here: use it on a
    QDQ int8 variant (`engine deploy --activation-type int8`), whose scales are in the graph.
    The engine cache saves minutes of engine building on every session after the first."""

    fp16: bool = False
    int8: bool = False
    cache_dir: Path | None = None

    @property
    def active(self) -> bool:
        return self.fp16 or self.int8 or self.cache_dir is not None

    def provider_options(self) -> dict[str, str]:
        """onnxruntime's option names (string values, as its C API takes them)."""
        options = {
            "trt_fp16_enable": str(self.fp16).lower(),
            "trt_int8_enable": str(self.int8).lower(),
        }
        if self.cache_dir is not None:
            options["trt_engine_cache_enable"] = "true"
            options["trt_engine_cache_path"] = str(self.cache_dir)
        return options

    def describe(self) -> str:
        parts = [name for name, on in (("fp16", self.fp16), ("int8", self.int8)) if on]
        if self.cache_dir is not None:
            parts.append(f"engine cache {self.cache_dir}")
        return ", ".join(parts) or "defaults"


# What `--trt-*` flags set for this process (one command per process); create_session reads it.
_tensorrt_options = TensorRTOptions()


def configure_tensorrt(options: TensorRTOptions) -> None:
    """Set the TensorRT options every later session of this process uses."""
    global _tensorrt_options
    if (
        options.cache_dir is not None
        and options.cache_dir.exists()
        and not options.cache_dir.is_dir()
    ):
        raise UsageError(f"--trt-cache {options.cache_dir}: not a folder")
    _tensorrt_options = options


def provider_entries(tried: Sequence[str], trt: TensorRTOptions) -> list[Any]:
    """The `providers` argument for onnxruntime: names, with TensorRT as (name, options) when
    it has options to pass."""
    if not trt.active:
        return list(tried)
    return [(p, trt.provider_options()) if p == PROVIDERS["tensorrt"] else p for p in tried]


def add_tensorrt_arguments(p: argparse.ArgumentParser) -> None:
    """`--trt-fp16`, `--trt-int8`, `--trt-cache DIR` (used only when TensorRT loads)."""
    p.add_argument("--trt-fp16", action="store_true", help="TensorRT: allow fp16 kernels")
    p.add_argument(
        "--trt-int8",
        action="store_true",
        help="TensorRT: allow int8 kernels (for QDQ int8 models; a float model needs a calibration table)",
    )
    p.add_argument(
        "--trt-cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="TensorRT: keep built engines in DIR and reuse them (the first session builds them)",
    )


def tensorrt_from_args(args: argparse.Namespace) -> TensorRTOptions:
    return TensorRTOptions(
        fp16=bool(getattr(args, "trt_fp16", False)),
        int8=bool(getattr(args, "trt_int8", False)),
        cache_dir=getattr(args, "trt_cache", None),
    )


@dataclass
class SessionInfo:
    """An open session plus the honest story of how its providers were chosen."""

    session: Any
    requested: str  # what the user asked for: auto, tensorrt, cuda, cpu
    tried: list[str]  # the provider list given to onnxruntime
    used: list[str]  # session.get_providers(): what really loaded
    fell_back: bool  # the best provider tried is not the one running
    notes: list[str] = field(default_factory=list)  # one line each, for the user

    @property
    def primary(self) -> str:
        """The provider that runs the graph first (short name)."""
        return short_name(self.used[0]) if self.used else "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "tried": [short_name(p) for p in self.tried],
            "used": [short_name(p) for p in self.used],
            "primary": self.primary,
            "fell_back": self.fell_back,
            "notes": list(self.notes),
        }


def _default_factory(model: Any, options: Any, providers: list[str]) -> Any:
    import onnxruntime as ort

    if any(p != PROVIDERS["cpu"] for p in providers) and hasattr(ort, "preload_dlls"):
        # CUDA/cuDNN installed as pip wheels (nvidia-*-cu12) are not on the loader's path;
        # onnxruntime >= 1.21 can load them from site-packages before the session needs them.
        try:
            ort.preload_dlls()
        except Exception:  # a failed preload shows up as the provider not loading
            pass
    return ort.InferenceSession(model, sess_options=options, providers=providers)


def session_options(
    *,
    graph_optimization: str = "all",
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    execution_mode: str = "sequential",
    log_severity: int = 3,
) -> Any:
    """onnxruntime SessionOptions with quiet logging (severity 3 = errors only).

    graph_optimization: disable, basic, extended, all. Threads 0 = onnxruntime's default.
    """
    import onnxruntime as ort

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if graph_optimization not in levels:
        raise UsageError(
            f"graph optimisation {graph_optimization!r}: choose one of {', '.join(levels)}"
        )
    options = ort.SessionOptions()
    options.log_severity_level = log_severity
    options.graph_optimization_level = levels[graph_optimization]
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL
        if execution_mode == "parallel"
        else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    return options


@contextmanager
def captured_native_output() -> Iterator[list[str]]:
    """Send file descriptor 2 and Python's stdout/stderr to a temp file while the block runs;
    yield a list that holds the captured lines afterwards (so a reason can still be reported).

    onnxruntime's native logger writes to fd 2 (Python-level redirection cannot stop it), and its
    Python layer print()s "EP Error" banners to sys.stdout. fd 1 is left alone, so `--json`
    output written before or after is untouched. The fd 2 redirection is process-wide for the
    block's duration: a process that draws on fd 2 (Textual does) should open GPU sessions in a
    child process (as the TUI does with `engine eval`) or pass quiet=False.
    """
    lines: list[str] = []
    python_text = io.StringIO()
    raw: list[str] = []
    try:
        with capture_fd2() as raw, redirect_stdout(python_text), redirect_stderr(python_text):
            yield lines
    finally:
        text = "".join(raw) + python_text.getvalue()
        lines.extend(line for line in text.splitlines() if line.strip())


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LIB_MISSING = re.compile(r"([\w.+-]+\.so[\w.]*): cannot open shared object file")


def failure_reason(provider: str, lines: Sequence[str]) -> str:
    """One short reason why `provider` did not load, read from onnxruntime's own messages."""
    key = {"TensorrtExecutionProvider": "TensorRT", "CUDAExecutionProvider": "CUDA"}.get(
        provider, provider
    )
    for raw in lines:
        line = _ANSI.sub("", raw)
        if key.lower() not in line.lower():
            continue
        missing = _LIB_MISSING.search(line)
        if missing:
            return f"library {missing.group(1)} not found"
    for raw in lines:
        line = _ANSI.sub("", raw)
        if "no cuda-capable device" in line.lower() or "cudaErrorNoDevice" in line:
            return "no CUDA device"
    return "it did not load (no GPU, or its CUDA/cuDNN/TensorRT libraries are missing)"


def create_session(
    model: Any,
    provider: str = "auto",
    *,
    options: Any = None,
    available: Sequence[str] | None = None,
    factory: SessionFactory | None = None,
    quiet: bool = True,
    tensorrt: TensorRTOptions | None = None,
) -> SessionInfo:
    """Open an onnxruntime session on `model` (a path or serialized bytes) with `provider`.

    auto: tries TensorRT → CUDA → CPU and notes any fallback. An explicit provider that does not
    actually load (onnxruntime would quietly use the CPU) raises ProviderError with the reason.
    `tensorrt` (default: what `configure_tensorrt` set) goes to TensorRT when it is tried.
    """
    import onnxruntime as ort

    if quiet:
        ort.set_default_logger_severity(3)
    tried = choose_providers(provider, available)
    if options is None:
        options = session_options()
    make = factory or _default_factory
    model_arg = str(model) if isinstance(model, os.PathLike) else model
    trt = tensorrt if tensorrt is not None else _tensorrt_options
    if trt.cache_dir is not None and PROVIDERS["tensorrt"] in tried:
        trt.cache_dir.mkdir(parents=True, exist_ok=True)
    entries = provider_entries(tried, trt)
    lines: list[str] = []
    try:
        if quiet:
            with captured_native_output() as lines:
                session = make(model_arg, options, entries)
        else:
            session = make(model_arg, options, entries)
    except CnnlabError:
        raise
    except Exception as exc:  # onnxruntime raises its own types (Fail, InvalidGraph, ...)
        message = _ANSI.sub("", str(exc)).strip().splitlines()
        raise CnnlabError(
            f"onnxruntime could not open the model: {message[0] if message else exc}"
        ) from None
    used = list(session.get_providers())
    notes: list[str] = []
    for wanted in tried:
        if wanted not in used and wanted != PROVIDERS["cpu"]:
            notes.append(f"{short_name(wanted)}: not used, {failure_reason(wanted, lines)}")
    fell_back = bool(used) and used[0] != tried[0]
    requested = provider.lower()
    if requested != "auto" and PROVIDERS[requested] not in used:
        raise ProviderError(
            f"provider {requested} was requested but did not load: {failure_reason(PROVIDERS[requested], lines)}; "
            "use --provider auto to fall back to the CPU"
        )
    if requested == "auto" and fell_back:
        notes.append(f"auto: fell back to {short_name(used[0])}")
    if trt.active and PROVIDERS["tensorrt"] in used:
        notes.append(f"tensorrt: {trt.describe()}")
    return SessionInfo(
        session=session,
        requested=requested,
        tried=tried,
        used=used,
        fell_back=fell_back,
        notes=notes,
    )
