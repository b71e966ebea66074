"""Subset, shuffle and the stratified validation split: seeded, whatever order files came in."""

from __future__ import annotations

import numpy as np

from engine.data.dataset import Dataset, RawData


def stratified_pick(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of n labels in the classes' proportions (largest remainders), at least one per
    class present when n allows it. All indices (shuffled) when n is not smaller than the pool."""
    total = len(labels)
    if n >= total:
        return rng.permutation(total)
    present, per_class = np.unique(labels, return_counts=True)
    exact = n * per_class / total
    quota = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: n - int(quota.sum())]] += 1
    if n >= len(present):
        # Give empty classes one image, taken from the classes with the most.
        for i in np.flatnonzero(quota == 0):
            quota[int(np.argmax(quota))] -= 1
            quota[i] = 1
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=int(k), replace=False)
        for c, k in zip(present, quota, strict=True)
        if k > 0
    ]
    return rng.permutation(np.concatenate(chosen))


def stratified_split(
    labels: np.ndarray, val_split: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: each class split in the same proportion, both shuffled.

    Every class with two or more images gets at least one in each part, so no class is missing
    from validation and none is learnt from validation alone."""
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(idx) * val_split))
        if val_split > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        val.append(idx[:k])
        train.append(idx[k:])
    if val_split > 0 and len(labels) >= 2 and not sum(len(v) for v in val):
        # One image per class (subset=10): validation still needs something to measure.
        biggest = max(range(len(train)), key=lambda i: len(train[i]))
        val[biggest], train[biggest] = train[biggest][:1], train[biggest][1:]
    empty = np.zeros(0, np.int64)
    return (
        rng.permutation(np.concatenate(train)) if train else empty,
        rng.permutation(np.concatenate(val)) if val else empty,
    )


def subset_and_split(
    raw: RawData, source: str, *, subset: int | None, val_split: float, seed: int
) -> Dataset:
    """Apply subset, shuffle and the stratified validation split (seeded, class-order-proof)."""
    rng = np.random.default_rng(seed)
    classes = len(raw.classes)
    pool = stratified_pick(raw.y_train, subset or len(raw.y_train), rng)
    small = max(subset // 5, classes) if subset else None
    test = stratified_pick(raw.y_test, small or len(raw.y_test), rng)
    if raw.x_val is not None and raw.y_val is not None:
        train_idx = pool
        val_idx = stratified_pick(raw.y_val, small or len(raw.y_val), rng)
        x_val, y_val = raw.x_val[val_idx], raw.y_val[val_idx]
    else:
        part_train, part_val = stratified_split(raw.y_train[pool], val_split, rng)
        train_idx, val_idx = pool[part_train], pool[part_val]
        x_val, y_val = raw.x_train[val_idx], raw.y_train[val_idx]
    return Dataset(
        source=source,
        classes=list(raw.classes),
        x_train=raw.x_train[train_idx],
        y_train=raw.y_train[train_idx].astype(np.int64),
        x_val=x_val,
        y_val=y_val.astype(np.int64),
        x_test=raw.x_test[test],
        y_test=raw.y_test[test].astype(np.int64),
        from_cache=raw.from_cache,
    )
