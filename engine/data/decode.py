"""Image decoding for folder sources: one file, or many on a thread pool (JPEG fast paths)."""

from __future__ import annotations

import io
import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from engine.data.sources import Throttle

_JPEG_SOF = (0xC0, 0xC1, 0xC2)  # baseline, extended, progressive Huffman
_DECODE_CHUNK = 256
# Far above any training image, far below what would exhaust memory: a small file that claims
# a huge size (a "decompression bomb") is refused before a pixel is decoded.
MAX_PIXELS = 40_000_000


class ImageTooLarge(ValueError):
    """An image whose header claims more than MAX_PIXELS pixels."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__(
            f"is {width}×{height} pixels, more than cnnlab decodes "
            f"({MAX_PIXELS // 1_000_000} megapixels); shrink it first"
        )


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(width, height)


def _decode_workers() -> int:
    # Pillow releases the GIL while libjpeg/zlib decode, so a few threads overlap with the
    # Python-level work; more than four buys nothing for 32×32 images.
    return max(1, min(4, os.cpu_count() or 1))


def jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from a JPEG's frame header, skipping Pillow's Python parser."""
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in _JPEG_SOF:
            return (data[i + 7] << 8 | data[i + 8], data[i + 5] << 8 | data[i + 6], data[i + 9])
        if marker in (0xD9, 0xDA) or 0xC3 <= marker <= 0xCF:
            return None  # no frame before the scan, or a kind we leave to Pillow's full path
        i += 2 + (data[i + 2] << 8 | data[i + 3])
    return None


def decode_image(data: bytes, resize: int | None = None) -> np.ndarray:
    """Decode one image file's bytes to uint8 (H, W, 3) RGB (grey, palette, RGBA converted).

    JPEGs of one or three components go straight to Pillow's libjpeg decoder: that skips
    Pillow's marker parsing in Python and roughly halves the time per 32×32 image."""
    from PIL import Image

    image = None
    if data[:3] == b"\xff\xd8\xff":
        header = jpeg_header(data)
        if header is not None and header[2] in (1, 3) and header[0] > 0 and header[1] > 0:
            _check_size(header[0], header[1])
            try:
                image = Image.frombytes("RGB", header[:2], data, "jpeg", "RGB", "")
            except (OSError, ValueError):
                image = None  # let the full path decode it or say what is wrong
    if image is None:
        image = Image.open(io.BytesIO(data))
        _check_size(*image.size)  # from the header: nothing decoded yet
        image.load()
        if image.mode != "RGB":
            try:
                image = image.convert("RGB")
            except ValueError:  # e.g. 16-bit greyscale: via 8-bit grey
                image = image.convert("L").convert("RGB")
    if resize is not None and image.size != (resize, resize):
        image = image.resize((resize, resize), Image.Resampling.BILINEAR)
    return np.asarray(image)


def error_text(exc: BaseException) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "is not an image file Pillow can read"
    if isinstance(exc, ImageTooLarge):
        return str(exc)
    return f"is unreadable ({' '.join(str(exc).split()) or type(exc).__name__})"


def _decode_mosaic(datas: list[bytes], size: tuple[int, int]) -> list[np.ndarray | None]:
    """Decode same-size JPEGs straight into one tall image, with no per-image Python objects.

    Per 32×32 image this costs about half of `decode_image` and, as libjpeg runs without the
    GIL, it scales with threads. Uses Pillow's decoder interface (what `ImageFile.load` does);
    an image it cannot do comes back as None, for the general path to decode or explain."""
    from PIL import Image

    w, h = size
    mosaic = Image.new("RGB", (w, h * len(datas)))
    ok: list[bool] = []
    for k, data in enumerate(datas):
        try:
            decoder = Image._getdecoder("RGB", "jpeg", ("RGB", ""))
            decoder.setimage(mosaic.im, (0, k * h, w, (k + 1) * h))
            consumed, err = decoder.decode(data)
            decoder.cleanup()
            ok.append(consumed < 0 and err == 0)
        except Exception:  # a Pillow without this interface, or a bad file: general path
            ok.append(False)
    pixels = np.asarray(mosaic).reshape(len(datas), h, w, 3)
    return [pixels[k] if good else None for k, good in enumerate(ok)]


def _decode_chunk(payloads: list[bytes | str], resize: int | None) -> list[np.ndarray | str]:
    """Decode a chunk of files (bytes, or paths read here); failures come back as text."""
    out: list[np.ndarray | str | None] = [None] * len(payloads)
    datas: list[bytes] = []
    fast: list[int] = []  # JPEGs of the chunk's common size (the usual case: a whole dataset)
    cell: tuple[int, int] | None = None
    for i, payload in enumerate(payloads):
        try:
            if isinstance(payload, str):  # a path: read here, on the pool
                with open(payload, "rb") as fh:
                    data = fh.read()
            else:
                data = payload
        except OSError as exc:
            out[i] = f"cannot be read ({exc.strerror or exc})"
            datas.append(b"")
            continue
        datas.append(data)
        header = jpeg_header(data) if data[:3] == b"\xff\xd8\xff" else None
        if header is None or header[2] not in (1, 3) or not 0 < header[0] * header[1] <= 128 * 128:
            continue
        if cell is None:
            cell = header[:2]
        if header[:2] == cell and (resize is None or cell == (resize, resize)):
            fast.append(i)
    if cell is not None and fast:
        for i, image in zip(fast, _decode_mosaic([datas[i] for i in fast], cell), strict=True):
            out[i] = image
    for i, data in enumerate(datas):
        if out[i] is None:
            try:
                out[i] = decode_image(data, resize)
            except Exception as exc:  # truncated, corrupt, unsupported mode...
                out[i] = error_text(exc)
    return out  # type: ignore[return-value]


class Decoder:
    """Decodes files on a thread pool in chunks while the caller goes on reading the next ones."""

    def __init__(self, resize: int | None) -> None:
        self.resize = resize
        self._pool = ThreadPoolExecutor(
            max_workers=_decode_workers(), thread_name_prefix="cnnlab-decode"
        )
        self._futures: list[Future[list[np.ndarray | str]]] = []
        self._keys: list[list[int]] = []
        self._pending: list[bytes | str] = []
        self._pending_keys: list[int] = []
        self.count = 0

    def add(self, key: int, payload: bytes | str) -> None:
        """Queue one file (its bytes, or a path to read) under the caller's key."""
        self._pending.append(payload)
        self._pending_keys.append(key)
        self.count += 1
        if len(self._pending) >= _DECODE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._futures.append(self._pool.submit(_decode_chunk, self._pending, self.resize))
            self._keys.append(self._pending_keys)
            self._pending, self._pending_keys = [], []

    def results(self, progress: Throttle) -> dict[int, np.ndarray | str]:
        """key → image, or the reason it could not be decoded."""
        self._flush()
        out: dict[int, np.ndarray | str] = {}
        for keys, future in zip(self._keys, self._futures, strict=True):
            out.update(zip(keys, future.result(), strict=True))
            progress("decoding", len(out), self.count)
        progress("decoding", self.count, self.count)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
