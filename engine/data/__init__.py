"""Data sources for cnnlab: CIFAR-10, image folders (or a .tar.gz of one), .npz files, synthetic.

Every source is a loader registered by name (`engine.data.sources.register_source`) and selected
with a string such as `"synthetic"`, `"synthetic:600"`, `"cifar10"`, `"folder:PATH"` or
`"npz:PATH"`. `load_dataset` turns one into a `Dataset`: uint8 NHWC RGB images and int64 labels,
shuffled, with a stratified validation split whatever order the files came in; `dataset_for`
does the same from an experiment config, so training, export, eval and inspection agree.

Only numpy and Pillow are imported here; Keras (and so TensorFlow) is imported inside the
CIFAR-10 loader, and only when the files are not already in Keras' cache.
"""

from __future__ import annotations

# Importing a source's module registers it, and `list_sources` shows them in this order
# (the isort splits keep it).
from engine.data import synthetic as _synthetic  # noqa: F401

# isort: split
from engine.data import cifar10 as _cifar10  # noqa: F401

# isort: split
from engine.data import folder as _folder  # noqa: F401

# isort: split
from engine.data import npz as _npz  # noqa: F401

# isort: split
from engine.data.cifar10 import CIFAR10_CLASSES, keras_datasets_dir
from engine.data.dataset import SPLITS, Dataset
from engine.data.decode import decode_image
from engine.data.experiment import config_of_run, dataset_for
from engine.data.sources import (
    CACHE_ENV,
    SOURCES,
    DataSource,
    Progress,
    cache_root,
    check_source,
    list_sources,
    load_dataset,
    register_source,
)
from engine.data.synthetic import (
    SYNTHETIC_CLASSES,
    SYNTHETIC_SIZE,
    SYNTHETIC_TRAIN,
    synthetic_images,
)

__all__ = [
    "CACHE_ENV",
    "CIFAR10_CLASSES",
    "SOURCES",
    "SPLITS",
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_SIZE",
    "SYNTHETIC_TRAIN",
    "DataSource",
    "Dataset",
    "Progress",
    "cache_root",
    "check_source",
    "config_of_run",
    "dataset_for",
    "decode_image",
    "keras_datasets_dir",
    "list_sources",
    "load_dataset",
    "register_source",
    "synthetic_images",
]
