"""The order in which a task offers its items: each item's `order_key` is its rank (a permutation of 0..n-1), so
`next_item` reads the next open item from one index range.

Items appended to a running task (new rows in the input table) take the place their ordering gives them: after the
others when the order is as given; ranked with the rest by uncertainty; shuffled in among the items still open when
the order is random (seeded, so two runs give the same order), never among the items already done, where nobody
would be offered them.
"""
from __future__ import annotations

import numpy as np


def order_keys(ordering: str, uncertainty: np.ndarray, seed: int) -> np.ndarray:
    """Each item's rank (0..n-1) in the task order: as given, highest uncertainty first (ties as given), or one
    seeded shuffle."""
    n = len(uncertainty)
    if ordering == "given":
        return np.arange(n)
    if ordering == "uncertainty":
        order = np.argsort(-uncertainty, kind="stable")
    else:
        order = np.random.default_rng(seed).permutation(n)
    keys = np.empty(n, dtype=np.int64)
    keys[order] = np.arange(n)
    return keys


def appended_keys(ordering: str, old_keys: np.ndarray, old_open: np.ndarray, old_uncertainty: np.ndarray,
                  new_uncertainty: np.ndarray, seed: int) -> np.ndarray:
    """Order keys of all items (old by position, then the new ones) after appending `len(new_uncertainty)` items.

    `old_keys`, `old_open` and `old_uncertainty` are per old item, by position. The result is again a permutation
    of 0..n+m-1; the old items keep their order among themselves.
    """
    n, m = len(old_keys), len(new_uncertainty)
    if ordering == "given":
        return np.concatenate([np.asarray(old_keys, dtype=np.int64), n + np.arange(m, dtype=np.int64)])
    if ordering == "uncertainty":
        return order_keys("uncertainty", np.concatenate([old_uncertainty, new_uncertainty]), seed)
    old_keys = np.asarray(old_keys, dtype=np.int64)
    rng = np.random.default_rng([int(seed), n])  # a different, reproducible shuffle for each append
    by_key = np.argsort(old_keys, kind="stable")  # old positions in task order
    open_seq = by_key[np.asarray(old_open, dtype=bool)[by_key]]
    slots = np.zeros(len(open_seq) + m, dtype=bool)
    slots[rng.choice(len(slots), size=m, replace=False)] = True
    # each new item goes just before the open item that follows its slot, or after everything
    open_before = np.cumsum(~slots)[slots]
    follower = np.append(old_keys[open_seq], n)[open_before]
    new_positions = n + rng.permutation(m)
    primary = np.concatenate([old_keys, follower]).astype(np.int64)
    behind = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(m, dtype=np.int64)])  # new before their follower
    slot_rank = np.concatenate([np.zeros(n, dtype=np.int64), np.flatnonzero(slots).astype(np.int64)])
    entries = np.concatenate([np.arange(n), new_positions])
    order = entries[np.lexsort((slot_rank, behind, primary))]
    keys = np.empty(n + m, dtype=np.int64)
    keys[order] = np.arange(n + m)
    return keys
