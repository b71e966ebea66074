"""Take a model apart: the layer table (summary.json) and each layer's arithmetic.

- `keras_summary`: a Keras model → its JSON-able layer table (the run's summary.json);
- `arithmetic`: MACs and the spelled-out arithmetic of each layer, from a row alone (no
  TensorFlow), as registries keyed by layer type (`keras_explainers` fills one);
- `keras_weights`: one layer's arrays straight from a .keras archive with h5py;
- `stats`: per-filter statistics and preprocessing histograms (what the panes draw);
- `run_queries`: results on disk the panes put beside the figures.

ONNX files are analysed in `export.onnx_analysis` (engine never imports export).
"""

from __future__ import annotations

from engine.errors import CnnlabError
from engine.inspect import keras_explainers  # noqa: F401  (registers the explainers)
from engine.inspect.arithmetic import (
    CONV_TYPES,
    LAYER_EXPLAINERS,
    LAYER_MACS,
    conv_layers,
    conv_output_size,
    explain_layer,
    explanation,
    find_layer,
    layer_macs,
    shape_text,
)
from engine.inspect.keras_summary import CONFIG_KEYS, summarize_keras_model
from engine.inspect.keras_weights import (
    keras_weight_groups,
    load_keras_weights,
    load_kernel,
    read_keras_config,
)
from engine.inspect.run_queries import (
    ASSIGNMENT_PREPROCESSING,
    preprocessing_results,
    run_onnx_path,
)
from engine.inspect.stats import filter_report, preprocess_stats

explain = explain_layer  # a Keras row's arithmetic; ONNX rows: export.onnx_layers.explain

__all__ = [
    "ASSIGNMENT_PREPROCESSING",
    "CONFIG_KEYS",
    "CONV_TYPES",
    "CnnlabError",
    "LAYER_EXPLAINERS",
    "LAYER_MACS",
    "conv_layers",
    "conv_output_size",
    "explain",
    "explain_layer",
    "explanation",
    "filter_report",
    "find_layer",
    "keras_weight_groups",
    "layer_macs",
    "load_kernel",
    "load_keras_weights",
    "preprocess_stats",
    "preprocessing_results",
    "read_keras_config",
    "run_onnx_path",
    "shape_text",
    "summarize_keras_model",
]
