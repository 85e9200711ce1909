"""Loading files that other people made without ever running code from them.

``torch.load`` and ``np.load`` unpickle by default, and unpickling can run any code a file's author chose.
Everything the package reads through here is data only: tensors and plain values for ``.pt`` files (plus an
explicit allow-list of harmless types), no object arrays for ``.npy`` files. Anything else is refused with one
line naming the file.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecma.errors import EcmaError


def safe_torch_load(path: str | os.PathLike, what: str, allowed: tuple = (), *, mmap: bool = False) -> Any:
    """``torch.load`` that never runs code: tensors, plain values and the ``allowed`` types only.

    A file that needs anything else (a pickled object, a class, a function) is an error naming the file;
    its code is never executed. ``mmap``: map the tensors' bytes instead of reading them (torch's zip files
    only; a file in torch's older format is read whole).
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(list(allowed)):
            lazy = mmap and zipfile.is_zipfile(path)
            return torch.load(path, map_location="cpu", weights_only=True, mmap=lazy)
    except pickle.UnpicklingError as e:
        # torch's message: the global it refused (a pickled object), or an opcode it cannot read (junk)
        refused = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(e))
        if refused:
            raise EcmaError(f"{path}: refused: the {what} holds pickled objects or code ({refused.group(1)}), "
                            "not only weights; it was not run") from None
        raise EcmaError(f"{path}: not a readable {what} (not a torch file of tensors and plain values)") from None
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        message = str(e).splitlines()[0][:200] if str(e) else ""
        raise EcmaError(f"{path}: not a readable {what} ({type(e).__name__}: {message})") from None


def safe_np_load(path: str | os.PathLike, what: str = "array") -> np.ndarray:
    """``np.load`` of one ``.npy`` array with pickling disabled: an object array is refused, never unpickled."""
    path = Path(path)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise EcmaError(f"{path}: refused: the {what} is a pickled object array, not numbers") from None
        raise EcmaError(f"{path}: not a readable {what} ({str(e).splitlines()[0][:200]})") from None
    except (OSError, EOFError) as e:
        raise EcmaError(f"{path}: not a readable {what} ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None


def is_safetensors(path: str | os.PathLike) -> bool:
    """Whether the file is in the safetensors format (data only by construction), whatever its name: an
    8-byte little-endian header length, then the JSON header (a truncated file still counts, so that its
    reader names the damage)."""
    try:
        with open(path, "rb") as f:
            head = f.read(10)
    except OSError:
        return False
    return len(head) == 10 and head[8:10] == b'{"' and 0 < int.from_bytes(head[:8], "little") < 1 << 30


def check_torch_file(path: str | os.PathLike, what: str) -> None:
    """Refuse, in one line naming the file, a torch file that holds anything but tensors and plain values,
    before a library that loads the file itself (open_clip) reads it; the tensors are mapped, not read."""
    safe_torch_load(path, what, mmap=True)
