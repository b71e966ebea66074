"""`synthetic[:easy][:N]`: deterministic 10-class 32×32 datasets generated offline.

The default teaches: shapes and textures anywhere in the frame, at varied scales, slightly
turned, at varied contrast on a shaded background with small distractors, so a CNN clearly beats
an MLP and overfits visibly on a few thousand images. `synthetic:easy` is the centred, high-
contrast version that a tiny model learns in seconds (for tests and quick demos).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from engine.data.dataset import RawData
from engine.data.sources import LoadOptions, register_source
from engine.errors import DataError

SYNTHETIC_CLASSES = [
    "disc",
    "ring",
    "square",
    "frame",
    "cross",
    "h-stripes",
    "v-stripes",
    "checker",
    "triangle",
    "diagonal",
]
SYNTHETIC_TRAIN = 5000
SYNTHETIC_SIZE = 32


@dataclass(frozen=True)
class SyntheticStyle:
    """How varied the images are; fractions are of the image size."""

    shift: float  # the centre moves up to this far from the middle
    scale: tuple[float, float]  # the shape's "radius"
    turn: float  # the shape turns up to this many degrees either way
    # Brightness gap between shape and ground; None: a light shape on a dark ground.
    contrast: tuple[float, float] | None
    shading: float  # amplitude of a linear brightness ramp across the background
    distractors: int  # small blobs of random colour scattered over the image
    noise: float  # standard deviation of the pixel noise


STYLES = {
    "hard": SyntheticStyle(
        shift=0.18,
        scale=(0.17, 0.3),
        turn=25.0,
        contrast=(45.0, 140.0),
        shading=60.0,
        distractors=3,
        noise=18.0,
    ),
    "easy": SyntheticStyle(
        shift=0.1,
        scale=(0.25, 0.38),
        turn=0.0,
        contrast=None,
        shading=0.0,
        distractors=0,
        noise=12.0,
    ),
}


def synthetic_images(
    labels: np.ndarray,
    rng: np.random.Generator,
    size: int = SYNTHETIC_SIZE,
    style: SyntheticStyle = STYLES["hard"],
) -> np.ndarray:
    """One image per label: the class's shape or texture with random colours, place, scale, noise.

    Vectorised per class so that 6,000 images take a fraction of a second."""
    n = len(labels)
    coords = np.arange(size, dtype=np.float32) + 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    centre = size / 2
    reach = size * style.shift
    cx = rng.uniform(centre - reach, centre + reach, n).astype(np.float32)
    cy = rng.uniform(centre - reach, centre + reach, n).astype(np.float32)
    scale = rng.uniform(size * style.scale[0], size * style.scale[1], n).astype(np.float32)
    period = rng.uniform(size * 0.13, size * 0.22, n).astype(np.float32)  # of the textures
    phase = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    flip = rng.choice(np.array([-1.0, 1.0], np.float32), n)
    angle = np.radians(rng.uniform(-style.turn, style.turn, n)).astype(np.float32)
    cos, sin = np.cos(angle), np.sin(angle)

    masks = np.zeros((n, size, size), bool)
    for label in range(len(SYNTHETIC_CLASSES)):
        idx = np.flatnonzero(labels == label)
        if not len(idx):
            continue
        ox = xx[None] - cx[idx, None, None]
        oy = yy[None] - cy[idx, None, None]
        c, s_ = cos[idx, None, None], sin[idx, None, None]
        dx, dy = ox * c + oy * s_, oy * c - ox * s_  # the shape's own (turned) axes
        s = scale[idx, None, None]
        p = period[idx, None, None]
        ph = phase[idx, None, None]
        f = flip[idx, None, None]
        radius = np.sqrt(dx * dx + dy * dy)
        box = np.maximum(np.abs(dx), np.abs(dy))
        patch = box <= s * 1.15  # textures fill a square patch around the centre
        name = SYNTHETIC_CLASSES[label]
        if name == "disc":
            m = radius <= s
        elif name == "ring":
            m = (radius <= s) & (radius >= s * 0.55)
        elif name == "square":
            m = box <= s * 0.85
        elif name == "frame":
            m = (box <= s * 0.9) & (box >= s * 0.5)
        elif name == "cross":
            arm = np.maximum(s * 0.28, 1.2)
            m = ((np.abs(dx) <= arm) & (np.abs(dy) <= s)) | (
                (np.abs(dy) <= arm) & (np.abs(dx) <= s)
            )
        elif name == "h-stripes":
            m = patch & (np.sin(2 * np.pi * dy / p + ph) > 0)
        elif name == "v-stripes":
            m = patch & (np.sin(2 * np.pi * dx / p + ph) > 0)
        elif name == "checker":
            q = p / 2
            m = patch & ((np.floor((dx + ph) / q) + np.floor((dy + ph) / q)) % 2 == 0)
        elif name == "triangle":
            # Apex up or down; the half-width grows linearly from the apex to the base.
            t = (f * dy + s * 0.9) / (s * 1.8)
            m = (t >= 0) & (t <= 1) & (np.abs(dx) <= t * s)
        else:  # diagonal stripes, either direction
            m = patch & (np.sin(2 * np.pi * (dx + f * dy) / (p * 1.41) + ph) > 0)
        masks[idx] = m

    if style.contrast is None:
        # A light shape on a dark ground, both of random colour: clear contrast whatever the hues.
        bg = rng.uniform(0, 110, (n, 3)).astype(np.float32)
        fg = rng.uniform(145, 255, (n, 3)).astype(np.float32)
    else:
        # A random ground and a shape brighter by a gap drawn per image (per channel ±20 %).
        # (Either polarity as well left an MLP at chance: a baseline that learns nothing
        # teaches nothing.)
        gap = rng.uniform(*style.contrast, (n, 1)).astype(np.float32)
        bg = rng.uniform(0, 255 - gap, (n, 3)).astype(np.float32)
        fg = np.clip(bg + gap * rng.uniform(0.8, 1.2, (n, 3)).astype(np.float32), 0, 255)
    images = np.where(masks[..., None], fg[:, None, None, :], bg[:, None, None, :])
    if style.shading:
        ramp = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        shade = (xx[None] - centre) * ramp[:, 0, None, None] + (yy[None] - centre) * ramp[
            :, 1, None, None
        ]
        images += (shade * (style.shading / size))[..., None]
    for _ in range(style.distractors):
        bx = rng.uniform(0, size, (n, 1, 1)).astype(np.float32)
        by = rng.uniform(0, size, (n, 1, 1)).astype(np.float32)
        br = rng.uniform(1.0, 2.5, (n, 1, 1)).astype(np.float32)
        blob = (xx[None] - bx) ** 2 + (yy[None] - by) ** 2 <= br * br
        colour = rng.uniform(0, 255, (n, 3)).astype(np.float32)
        images = np.where(blob[..., None], colour[:, None, None, :], images)
    images += rng.standard_normal(images.shape, dtype=np.float32) * style.noise
    return np.clip(images, 0, 255).astype(np.uint8)


def _synthetic_split(
    n: int, rng: np.random.Generator, style: SyntheticStyle
) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.permutation(np.arange(n, dtype=np.int64) % len(SYNTHETIC_CLASSES))
    return synthetic_images(labels, rng, style=style), labels


def _parse(options: LoadOptions) -> tuple[SyntheticStyle, int]:
    """`synthetic`, `synthetic:N`, `synthetic:easy`, `synthetic:easy:N` → (style, N)."""
    style, count = "hard", ""
    for part in (options.arg or "").split(":"):
        if part in STYLES:
            style = part
        elif part and not count:
            count = part
        elif part:
            count = "?"
    if not count:
        return STYLES[style], SYNTHETIC_TRAIN
    try:
        n_train = int(count)
    except ValueError:
        raise DataError(
            f"{options.source}: expected synthetic:N or synthetic:easy:N with N a number of images"
        ) from None
    if n_train < len(SYNTHETIC_CLASSES):
        raise DataError(
            f"{options.source}: needs at least {len(SYNTHETIC_CLASSES)} images (one per class)"
        )
    return STYLES[style], n_train


@register_source(
    "synthetic",
    usage="synthetic[:easy][:N]",
    description=f"generated offline: 10 shape/texture classes, 32×32 RGB, "
    f"{SYNTHETIC_TRAIN:,} train / {SYNTHETIC_TRAIN // 5:,} test (or N train), deterministic per "
    f"seed; anywhere in the frame, turned, shaded and cluttered (easy: centred and clean)",
    arg="optional",
    status=lambda: {"note": "generated on the fly, nothing to download"},
)
def _load_synthetic(options: LoadOptions) -> RawData:
    style, n_train = _parse(options)
    # Copies: callers own what they get, the generated arrays stay as made.
    x_train, y_train, x_test, y_test = (a.copy() for a in _generated(style, n_train, options.seed))
    return RawData(list(SYNTHETIC_CLASSES), x_train, y_train, x_test, y_test)


@functools.lru_cache(maxsize=4)
def _generated(
    style: SyntheticStyle, n_train: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The generated splits, kept per (style, size, seed) in this process: a parent trains its
    children one after another on the same data, and 6,000 images take about 0.5 s to draw
    (18 MB each kept; a copy costs a few ms)."""
    n_test = max(n_train // 5, len(SYNTHETIC_CLASSES))
    x_train, y_train = _synthetic_split(n_train, np.random.default_rng([seed, 1]), style)
    x_test, y_test = _synthetic_split(n_test, np.random.default_rng([seed, 2]), style)
    return x_train, y_train, x_test, y_test
