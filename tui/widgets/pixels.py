"""Images drawn with half-block cells: each terminal cell shows two pixels, `▀` in fg/bg colours.

This works in every terminal (no sixel/kitty protocol); Rich downgrades the colours to the
256-colour palette when true colour is not available (typical over SSH). numpy is imported
lazily (~0.1 s) so importing this module costs nothing at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual.widgets import Static

if TYPE_CHECKING:
    import numpy as np

UPPER_HALF = "▀"

# Anchor colours of the colour maps (RGB), interpolated linearly.
COLORMAPS: dict[str, tuple[tuple[int, int, int], ...]] = {
    # dark → bright, for activations and magnitudes
    "viridis": ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)),
    # negative blue, zero white, positive red, for signed weights
    "diverging": ((33, 102, 172), (146, 197, 222), (247, 247, 247), (244, 165, 130), (178, 24, 43)),
    "gray": ((0, 0, 0), (255, 255, 255)),
}


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Shrink or grow an H×W(×C) image: block mean for integer shrink factors, else nearest."""
    import numpy as np

    src_h, src_w = image.shape[:2]
    if (src_h, src_w) == (height, width):
        return image
    if src_h % height == 0 and src_w % width == 0:
        fh, fw = src_h // height, src_w // width
        shaped = image.reshape(height, fh, width, fw, *image.shape[2:]).astype(np.float32)
        return shaped.mean(axis=(1, 3)).round().astype(image.dtype)
    rows = (np.arange(height) * src_h / height).astype(int)
    cols = (np.arange(width) * src_w / width).astype(int)
    return image[rows][:, cols]


def apply_colormap(
    values: np.ndarray,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
) -> np.ndarray:
    """Map a 2-D float array to uint8 RGB with one of `COLORMAPS` (NaN → black)."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    lo = float(np.nanmin(v)) if vmin is None else vmin
    hi = float(np.nanmax(v)) if vmax is None else vmax
    span = hi - lo if hi > lo else 1.0
    t = np.clip((v - lo) / span, 0.0, 1.0)
    anchors = np.asarray(COLORMAPS[cmap], dtype=np.float64)
    pos = np.nan_to_num(t) * (len(anchors) - 1)
    i0 = np.clip(np.floor(pos).astype(int), 0, len(anchors) - 2)
    frac = (pos - i0)[..., None]
    rgb = anchors[i0] * (1 - frac) + anchors[i0 + 1] * frac
    rgb[np.isnan(v)] = 0
    return rgb.round().astype(np.uint8)


def to_rgb(image: Any) -> np.ndarray:
    """uint8 H×W×3 from uint8/float RGB, H×W×1 or H×W grayscale (floats assumed in [0, 1])."""
    import numpy as np

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = (
            np.clip(arr * (255.0 if arr.max(initial=0) <= 1.0 else 1.0), 0, 255)
            .round()
            .astype(np.uint8)
        )
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr[..., :3]


class HalfBlockImage:
    """A Rich renderable: an RGB image, two pixel rows per text row.

    `width` is in cells (= pixels); the image is resized to `width` × `2·rows` pixels.
    """

    def __init__(self, image: Any, width: int | None = None) -> None:
        rgb = to_rgb(image)
        h, w = rgb.shape[:2]
        width = width or w
        height = max(2, round(h * width / w / 2) * 2)
        self.rgb = resize(rgb, height, width)
        self.width = width

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.segments()

    def segments(self) -> Iterable[Segment]:
        rgb = self.rgb
        cache: dict[tuple[int, ...], Style] = {}
        newline = Segment.line()
        for y in range(0, rgb.shape[0], 2):
            top = rgb[y].tolist()
            bottom = rgb[y + 1].tolist() if y + 1 < rgb.shape[0] else top
            for t, b in zip(top, bottom, strict=True):
                key = (*t, *b)
                style = cache.get(key)
                if style is None:
                    style = cache[key] = Style.parse(
                        f"#{t[0]:02x}{t[1]:02x}{t[2]:02x} on #{b[0]:02x}{b[1]:02x}{b[2]:02x}"
                    )
                yield Segment(UPPER_HALF, style)
            yield newline


class PixelImage(Static):
    """A Static showing an image in half-block pixels, with an optional caption below."""

    DEFAULT_CSS = """
    PixelImage {
        width: auto;
        height: auto;
    }
    """

    def __init__(
        self,
        image: Any,
        *,
        width: int | None = None,
        caption: str = "",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.image = image
        self.pixel_width = width
        self.caption = caption
        self.update(self._build())

    def _build(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        picture = HalfBlockImage(self.image, self.pixel_width)
        if not self.caption:
            return picture
        return Group(picture, Text(self.caption[: picture.width], style="dim", no_wrap=True))

    def set_image(self, image: Any, caption: str | None = None) -> None:
        """Show another image (same width)."""
        self.image = image
        if caption is not None:
            self.caption = caption
        self.update(self._build())
