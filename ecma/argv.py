"""Command-line words for the workflow's rules: values that are data, never options.

argparse reads any word that starts with ``-`` as an option, and 151 of LLP's 11,849 file names do
(``-9WBkdJq104_30_40``). A value joined to its flag (``--names=-9WBkdJq104_30_40``) is always the flag's
value, so the rules pass every name and path that way, one flag per value; the options that take lists
accumulate them (argparse's ``extend``). A whole shell command is one argument to ``/bin/sh``, which Linux
caps at 128 KiB: :func:`check_length` stops a workflow before any job whose command would not fit.
"""

from __future__ import annotations

import shlex
from typing import Iterable

from ecma.errors import EcmaError

# One argument to /bin/sh may hold 32 pages (MAX_ARG_STRLEN, 128 KiB); the rest of a command and its log
# redirection need room too.
MAX_VALUES_BYTES = 100_000


def option(flag: str, value: object) -> str:
    """``--flag=VALUE``, shell-quoted: read as the flag's value whatever VALUE starts with."""
    return shlex.quote(f"{flag}={value}")


def options(flag: str, values: Iterable[object]) -> str:
    """One ``--flag=VALUE`` per value (for options that accumulate their values)."""
    return " ".join(option(flag, v) for v in values)


def check_length(words: str, what: str, hint: str) -> str:
    """``words`` if they fit on a command line, else an EcmaError naming ``what`` and what to do (``hint``)."""
    size = len(words.encode())
    if size > MAX_VALUES_BYTES:
        raise EcmaError(f"{what}: {size:,} bytes of names and paths would not fit on one command line "
                        f"(at most {MAX_VALUES_BYTES:,}); {hint}")
    return words
