"""The dataset an experiment config names: one mapping for training, export, eval and inspection.

Every setting that shapes the images (source, subset, resize, validation split, seed) is read
here and nowhere else, so an exported model's parity images and an evaluation's test set come
at the size the model was trained at.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.config import ExperimentConfig
from engine.data.dataset import Dataset
from engine.data.sources import Progress, load_dataset


def dataset_for(
    config: ExperimentConfig,
    *,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> Dataset:
    """Load the data `config` trains on: its source, subset, resize, validation split and seed."""
    return load_dataset(
        config.data,
        subset=config.subset,
        resize=config.resize,
        val_split=config.val_split,
        seed=config.seed,
        cache_dir=cache_dir,
        progress=progress,
    )


def config_of_run(record: Mapping[str, Any], **changes: Any) -> ExperimentConfig:
    """The config a run.json records (older files: missing fields take defaults), with `changes`.

    The data source falls back to the record's `data.source` when its config does not name one;
    `changes` replace fields (e.g. `data=` another source: the trained `resize` still applies)."""
    fields = dict(record.get("config") or {})
    if not fields.get("data"):
        source = (record.get("data") or {}).get("source")
        if source:
            fields["data"] = source
    fields.update(changes)
    return ExperimentConfig.from_dict(fields)
