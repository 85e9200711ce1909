"""Reading one published ``.npy`` feature file without ever unpickling anything.

The header is parsed first (numpy's own header reader, which evaluates no code); a file is refused, with a
one-line reason, when it is not ``.npy``, holds Python objects (an object array is a pickle: loading it can
run arbitrary code), is not floating point, has another shape, is shorter than its header says, or holds
NaN or infinity. Only then are the data bytes read, as raw bytes into the dtype the header named: numpy's
pickle path is never reached, whatever the file holds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format


class BadFeatureFile(Exception):
    """A feature file that cannot be imported; ``str(e)`` is the one-line reason."""


def _read_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = npy_format.read_magic(f)
    except ValueError:
        raise BadFeatureFile("not a .npy file (no numpy magic string)") from None
    try:
        if version == (1, 0):
            return npy_format.read_array_header_1_0(f)
        if version == (2, 0):
            return npy_format.read_array_header_2_0(f)
        return npy_format._read_array_header(f, version)  # 3.0 (utf-8 header); numpy has no public reader
    except (ValueError, SyntaxError, TypeError) as e:
        raise BadFeatureFile(f"unreadable .npy header ({str(e).splitlines()[0][:120]})") from None


def _shape_fits(found: tuple[int, ...], shape: tuple) -> bool:
    """``None`` in ``shape`` is a length published per video (at least 1)."""
    return len(found) == len(shape) and all(n >= 1 if want is None else n == want for n, want in zip(found, shape))


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("T" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def read_feature_file(path: str | os.PathLike, shape: tuple) -> tuple[np.ndarray, int]:
    """The array in ``path`` as native float32, checked to have ``shape``; and the file's size in bytes.

    A ``None`` in ``shape`` (e.g. ``(None, 1024)``) accepts any length of at least 1 along that axis.

    Raises :class:`BadFeatureFile` naming the problem (missing, not .npy, object or non-float dtype, wrong
    shape, truncated, NaN/inf).
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise BadFeatureFile("missing") from None
    except OSError as e:
        raise BadFeatureFile(f"cannot be opened ({e.strerror})") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        file_shape, fortran_order, dtype = _read_header(f)
        if dtype.hasobject:
            raise BadFeatureFile("holds Python objects (a pickled object array); refused, never loaded")
        if dtype.kind != "f" or dtype.fields is not None:
            raise BadFeatureFile(f"dtype {dtype} is not floating point")
        if not _shape_fits(tuple(file_shape), tuple(shape)):
            raise BadFeatureFile(f"shape {tuple(file_shape)}, expected {_shape_text(shape)}")
        nbytes = int(np.prod(file_shape)) * dtype.itemsize
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise BadFeatureFile(f"truncated: {len(data)} of {nbytes} data bytes")
    array = np.frombuffer(data, dtype=dtype).reshape(file_shape, order="F" if fortran_order else "C")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise BadFeatureFile("contains NaN or infinite values")
    return array, size
