"""Pretrained weights through Keras' own cache, failing clearly when offline.

Keras caches ImageNet weights as `$KERAS_HOME/models/<file>` (default `~/.keras`). Offline, its
downloader raises a bare "URL fetch failure", and a silent network can hang it without a socket
timeout. `resolve_weights` checks the cache first and turns a failed fetch into a WeightsError
that says which file to put where.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from engine.backbones import BackboneSpec
from engine.errors import WeightsError, first_line

FETCH_TIMEOUT_S = 20.0


def keras_home() -> Path:
    """Keras' cache root: $KERAS_HOME, else ~/.keras (as keras.config.keras_home() decides)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def weights_cache_path(spec: BackboneSpec, input_size: int) -> Path:
    return keras_home() / "models" / spec.weights_file(input_size)


def is_cached(spec: BackboneSpec, input_size: int) -> bool:
    return weights_cache_path(spec, input_size).is_file()


def resolve_weights(weights: str) -> str | None:
    """The `weights=` argument Keras Applications take: None, "imagenet" or an existing path."""
    if weights == "none":
        return None
    if weights == "imagenet":
        return "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {weights} does not exist")
    return str(path)


def build_backbone_checked(spec: BackboneSpec, input_size: int, weights: str) -> Any:
    """Build the backbone; with ImageNet weights not cached, fetch with a timeout or explain."""
    resolved = resolve_weights(weights)
    if resolved != "imagenet" or is_cached(spec, input_size):
        try:
            return spec.build(input_size, resolved)
        except (OSError, ValueError) as exc:
            if resolved not in (None, "imagenet"):
                raise WeightsError(
                    f"cannot load weights {weights} into {spec.name}: {exc}"
                ) from None
            raise
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(FETCH_TIMEOUT_S)
    try:
        return spec.build(input_size, "imagenet")
    except Exception as exc:  # Keras raises a bare Exception("URL fetch failure ...")
        target = weights_cache_path(spec, input_size)
        _remove_partial(target)
        reason = _short_reason(exc)
        raise WeightsError(
            f"ImageNet weights for {spec.name} are not cached and could not be downloaded "
            f"({reason}); put {target.name} in {target.parent}/ or use --weights none "
            f"(random initialisation)"
        ) from None
    finally:
        socket.setdefaulttimeout(old_timeout)


def _short_reason(exc: BaseException) -> str:
    """Keras says "URL fetch failure on <url>: <code> -- <reason>"; keep the part a person needs."""
    text = first_line(exc, limit=None)  # the part a person needs is at the end
    if "URL fetch failure" in text:
        tail = text.split(" -- ", 1)[1].strip() if " -- " in text else ""
        return f"download failed{': ' + tail if tail else ''}"
    return text[:160]


def _remove_partial(target: Path) -> None:
    # Keras downloads straight to the target name; a failed fetch may leave a stub behind.
    try:
        if target.is_file() and target.stat().st_size < 1024:
            target.unlink()
    except OSError:
        pass
