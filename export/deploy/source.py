"""What `engine deploy` works on: the fp32 .onnx file, how to feed it, and the run's own data.

A run gives everything: its float export, its data source (reloaded with the run's subset,
split and seed, so "training images" are exactly the images it trained on) and its
preprocessing (from the file's metadata). A bare file needs `--data` (and `--preprocessing`
when its metadata does not say); without data, accuracy and agreement are reported as n/a.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import CnnlabError, UsageError
from engine.preprocessing import PreprocessSpec
from engine.runs import Run, RunStore

DEFAULT_CALIBRATION = 256
CALIBRATION_BATCH = 32


class DeployError(CnnlabError):
    """A variant cannot be built or measured."""


@dataclass
class DeployTarget:
    """The fp32 model to derive variants from, and how images become its input."""

    model: Path
    meta: dict[str, Any]
    run: Run | None
    baked: bool  # the file takes uint8 pixels (preprocessing is in the graph)
    spec: PreprocessSpec | None  # else: apply this to uint8 pixels

    @property
    def out_dir(self) -> Path:
        """Where variants are written: `<run>/deploy/`, or `<stem>-deploy/` beside a bare file."""
        if self.run is not None:
            return self.run.path / "deploy"
        return self.model.parent / f"{self.model.stem}-deploy"

    def feed(self, images: np.ndarray) -> np.ndarray:
        """uint8 RGB images (NHWC) → this model's input, exactly as `engine eval` feeds it."""
        if self.baked:
            return np.asarray(images, dtype=np.uint8)
        assert self.spec is not None
        return self.spec.apply(images)


@dataclass
class DeployData:
    """The images deploy uses: training images for calibration, test images for accuracy."""

    source: str
    classes: list[str]
    x_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _float_export(run: Run) -> Path:
    """The run's latest export taking float input (else its latest export of any kind)."""
    exports = list(((run.record.get("onnx") or {}).get("exports")) or [])
    if not exports:
        raise UsageError(f"run {run.id} has no ONNX export yet; run `engine export {run.id}` first")
    floats = [e for e in exports if not e.get("with_preprocessing")]
    entry = (floats or exports)[-1]
    path = run.path / str(entry.get("path") or "model.onnx")
    if not path.is_file():
        raise UsageError(f"run {run.id}: its export {path.name} is missing; export it again")
    return path


def resolve_target(
    target: str | Path, *, runs_root: Path | str | None = None, preprocessing: str | None = None
) -> DeployTarget:
    """RUN|FILE → DeployTarget. A file exported from a run is attached to that run."""
    import onnx

    from export.evaluate import _input_feed, find_source_run
    from export.info import OnnxFileError
    from export.onnx_metadata import cnnlab_metadata, read_metadata

    path = Path(target)
    run: Run | None = None
    if path.is_file():
        model = path
    elif path.suffix == ".onnx":
        raise OnnxFileError(f"{path}: no such file")
    else:
        try:
            run = RunStore(runs_root).open(target)
        except CnnlabError:
            raise UsageError(f"{target}: neither an .onnx file nor a run") from None
        model = _float_export(run)
    try:
        header = onnx.load(str(model), load_external_data=False)
    except Exception:
        raise OnnxFileError(f"{model}: not an ONNX model, or a corrupt/truncated one") from None
    meta = cnnlab_metadata(read_metadata(header))
    if run is None:
        run = find_source_run(model, meta, runs_root)
    baked, spec = _input_feed(meta, preprocessing)
    return DeployTarget(model=model, meta=meta, run=run, baked=baked, spec=spec)


def load_data(target: DeployTarget, data: str | None) -> DeployData | None:
    """The run's data reloaded as the run loaded it, or `data`; None when neither is known."""
    from engine.data import load_dataset

    config = (target.run.record.get("config") or {}) if target.run else {}
    source = data or config.get("data")
    if not source:
        return None
    same_as_run = target.run is not None and source == config.get("data")
    dataset = load_dataset(
        source,
        subset=config.get("subset") if same_as_run else None,
        val_split=config.get("val_split", 0.2) if same_as_run else 0.2,
        seed=config.get("seed", 0) if same_as_run else 0,
    )
    return DeployData(
        source=source,
        classes=list(dataset.classes),
        x_train=np.asarray(dataset.x_train),
        x_test=np.asarray(dataset.x_test),
        y_test=np.asarray(dataset.y_test),
    )


def check_calibration_count(n: int) -> None:
    if n < 1:
        raise UsageError(f"--calibration must be at least 1 image (got {n})")


@dataclass
class TrainingImageReader:
    """onnxruntime's CalibrationDataReader protocol over N training images, fed as the model
    expects. `split` is always "train": calibrating on test images would leak the test set
    into the quantization ranges. Duck-typed (get_next/rewind) so onnxruntime stays lazy."""

    input_name: str
    images: np.ndarray  # uint8 NHWC, already chosen
    target: DeployTarget
    source: str
    indices: list[int]  # positions in the training split
    batch_size: int = CALIBRATION_BATCH
    split: str = "train"
    _position: int = field(default=0, repr=False)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._position >= len(self.images):
            return None
        batch = self.images[self._position : self._position + self.batch_size]
        self._position += self.batch_size
        return {self.input_name: self.target.feed(batch)}

    def rewind(self) -> None:
        self._position = 0

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        self.rewind()
        while (item := self.get_next()) is not None:
            yield item

    def __len__(self) -> int:
        return len(self.images)

    def describe(self) -> dict[str, Any]:
        return {"split": self.split, "source": self.source, "images": len(self.images)}


def calibration_reader(
    target: DeployTarget, data: DeployData, n: int, input_name: str, seed: int = 0
) -> TrainingImageReader:
    """N training images picked at random (seeded) — never the test split."""
    check_calibration_count(n)
    if len(data.x_train) == 0:
        raise UsageError(f"{data.source} has no training images to calibrate on")
    count = min(n, len(data.x_train))
    picked = np.sort(np.random.default_rng(seed).choice(len(data.x_train), count, replace=False))
    return TrainingImageReader(
        input_name=input_name,
        images=data.x_train[picked],
        target=target,
        source=data.source,
        indices=[int(i) for i in picked],
    )
