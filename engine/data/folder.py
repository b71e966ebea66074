"""`folder:PATH`: train/<class>/*, test/<class>/* in a folder or a .tar(.gz), decoded once and cached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.data.dataset import RawData, check_raw
from engine.data.decode import Decoder
from engine.data.folder_cache import cache_file, folder_key, read_cache, write_cache
from engine.data.layout import assemble, build_layout, check_layout, walk_folder
from engine.data.notices import Notices
from engine.data.sources import LoadOptions, cache_root, register_source
from engine.data.tar import decode_tar, is_tar
from engine.errors import DataError


def _folder_status() -> dict[str, Any]:
    root = cache_root() / "data"
    files = sorted(root.glob("folder-*.npz")) if root.is_dir() else []
    size = sum(f.stat().st_size for f in files)
    note = (
        f"{len(files)} decoded folder(s) cached, {size / 1e6:.0f} MB"
        if files
        else "nothing cached yet"
    )
    return {"cached": bool(files), "location": str(root), "note": note}


@register_source(
    "folder",
    usage="folder:PATH",
    description="PATH/train/<class>/*.jpg|png and PATH/test/<class>/..., or a .tar.gz of that "
    "layout; decoded once, then read from cnnlab's cache",
    arg="required",
    status=_folder_status,
)
def _load_folder(options: LoadOptions) -> RawData:
    where = options.source
    path = Path(options.arg or "").expanduser()
    if not path.exists():
        raise DataError(f"{where}: no such file or folder: {path}")
    path = path.resolve()
    is_dir = path.is_dir()
    if not is_dir and not path.is_file():  # opening a FIFO would block for ever
        raise DataError(f"{where}: {path} is a special file, not a folder or an archive")
    notices = Notices(where)
    if is_dir:
        listing, dirs, fingerprint = walk_folder(path, notices)
        layout = build_layout([(parts, i) for i, (parts, _) in enumerate(listing)], dirs, where)
        classes = check_layout(layout, where)
        key = folder_key(path, options.resize, fingerprint)
    elif is_tar(path, where):
        key = folder_key(path, options.resize, None)
    else:
        raise DataError(
            f"{where}: {path} is neither a folder nor a .tar/.tar.gz archive of train/ and test/"
        )

    cache = cache_file(options.cache_dir, path, options.resize, key)
    cached = read_cache(cache, key)
    if cached is not None:
        notices.replay(cached.notices)
        notices.emit()
        return cached

    if is_dir:
        decoder = Decoder(options.resize)
        try:
            for per_class in layout.files.values():
                for entries in per_class.values():
                    for _, i in entries:
                        decoder.add(i, listing[i][1])
            results = decoder.results(options.progress)
        finally:
            decoder.close()
    else:
        layout, classes, results = decode_tar(path, options, notices)
    raw = assemble(layout, classes, results, where)
    check_raw(raw, where)
    if not is_dir:  # a folder is walked again on every load; an archive is read only once
        raw.notices = notices.record()
    notices.emit()
    options.progress("writing cache", 0, 1)
    write_cache(cache, key, raw, path)
    options.progress("writing cache", 1, 1)
    return raw
