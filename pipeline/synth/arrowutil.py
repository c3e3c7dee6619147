"""Vectorised helpers that turn numpy arrays into Arrow arrays of the contract types."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EPOCH = np.datetime64("1970-01-01", "D")

_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def dec(unscaled: np.ndarray, typ: pa.DataType, mask: np.ndarray | None = None) -> pa.Array:
    """Decimal128 array from int64 unscaled values (e.g. cents for scale 2)."""
    u = np.ascontiguousarray(unscaled, dtype=np.int64)
    n = len(u)
    words = np.empty((n, 2), dtype=np.int64)
    words[:, 0] = u
    words[:, 1] = u >> 63
    validity = None
    if mask is not None and mask.any():   # mask True = null
        validity = pa.array(~mask).buffers()[1]
        return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(words)], null_count=int(mask.sum()))
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(words)])


def dates(days: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """date32 array from int days since the epoch."""
    d = np.ascontiguousarray(days, dtype=np.int32)
    return pa.array(d, type=pa.int32(), mask=mask).cast(pa.date32())


def padded(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """prefix + zero-padded decimal numbers, e.g. S202610010000042."""
    s = pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string())
    s = pc.utf8_lpad(s, width=width, padding="0")
    return pc.binary_join_element_wise(prefix, s, "")


def concat_str(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def hexhash(values: np.ndarray, salt: int) -> pa.Array:
    """Deterministic 16-hex-digit pseudo hash of uint64 values (splitmix64)."""
    with np.errstate(over="ignore"):
        z = np.asarray(values, dtype=np.uint64) + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    b = z.astype(">u8").view(np.uint8).reshape(-1, 8)
    s = np.ascontiguousarray(_HEX[b]).view("S16").reshape(-1)
    return pa.array(s, type=pa.binary()).cast(pa.string())


def day_to_str(day: int) -> str:
    return str(EPOCH + np.timedelta64(int(day), "D"))


def day_to_date(day: int):
    import datetime
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=int(day))


def str_to_day(s: str) -> int:
    return int((np.datetime64(s, "D") - EPOCH).astype(np.int64))
