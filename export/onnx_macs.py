"""MAC counters for ONNX ops, a registry keyed by op type (`MAC_COUNTERS`).

Each counter gets a node's concrete shapes (a free symbolic dim counts as 1) and returns the
multiply-accumulates of one pass at those shapes, or None when a shape it needs is unknown;
`export.onnx_analysis` turns that into MACs per sample. Counting a new op is registering one
function with `@mac_counter("Op")`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Shape = list[int | str]

# Ops that move or reshape data: no multiply-accumulates to count, so nothing to warn about.
NO_MAC_OPS = {
    "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice",
    "Gather", "GatherElements", "GatherND", "Shape", "Size", "Identity", "Cast", "CastLike",
    "Pad", "Expand", "Tile", "Dropout", "Constant", "ConstantOfShape", "Range",
    "DepthToSpace", "SpaceToDepth",
}  # fmt: skip


@dataclass
class NodeShapes:
    """A node's input/output shapes, concrete (free symbolic dims as 1), for the counters."""

    node: Any
    shapes: Mapping[str, Shape | None]
    attrs: dict[str, Any]

    def _get(self, names: Any, i: int) -> list[int] | None:
        if len(names) <= i or not names[i]:
            return None
        return concrete(self.shapes.get(names[i]))

    def input(self, i: int) -> list[int] | None:
        return self._get(self.node.input, i)

    def output(self, i: int) -> list[int] | None:
        return self._get(self.node.output, i)


MacCounter = Callable[[NodeShapes], "int | None"]
MAC_COUNTERS: dict[str, MacCounter] = {}


def mac_counter(*ops: str) -> Callable[[MacCounter], MacCounter]:
    """Register a MAC counter for these op types (None from it means: shapes unknown)."""

    def register(fn: MacCounter) -> MacCounter:
        for op in ops:
            MAC_COUNTERS[op] = fn
        return fn

    return register


@mac_counter("Conv", "FusedConv", "NhwcConv")
def _conv_macs(n: NodeShapes) -> int | None:
    # W [M, C/group, k...]: every output element needs C/group × prod(k) MACs, whatever the
    # dilation (it changes the output size, which the inferred shape already has).
    w, out = n.input(1), n.output(0)
    if not w or not out or len(w) < 3:
        return None
    return prod(out) * w[1] * prod(w[2:])


@mac_counter("ConvTranspose")
def _conv_transpose_macs(n: NodeShapes) -> int | None:
    # W [C, M/group, k...]: every input element is spread over (M/group) × prod(k) outputs.
    x, w = n.input(0), n.input(1)
    if not x or not w or len(w) < 3:
        return None
    return prod(x) * w[1] * prod(w[2:])


@mac_counter("Gemm", "FusedGemm")
def _gemm_macs(n: NodeShapes) -> int | None:
    a, out = n.input(0), n.output(0)
    if not a or not out or len(a) != 2:
        return None
    k = a[0] if int(n.attrs.get("transA", 0)) else a[1]
    return prod(out) * k


@mac_counter("MatMul", "FusedMatMul")
def _matmul_macs(n: NodeShapes) -> int | None:
    # Either operand may be the constant one: out [..., M, N] needs K = A's last dim each.
    a, out = n.input(0), n.output(0)
    if not a or out is None:
        return None
    return prod(out) * a[-1]


def concrete(shape: Shape | None) -> list[int] | None:
    """Symbolic dims → 1 (batch-of-one arithmetic); None if the shape is unknown."""
    if shape is None:
        return None
    return [d if isinstance(d, int) and d > 0 else 1 for d in shape]


def prod(values: list[int]) -> int:
    """The product of a shape (1 for a scalar)."""
    return int(math.prod(values)) if values else 1
