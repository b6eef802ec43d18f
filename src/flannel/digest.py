"""SHA-256 whose running state can be saved and restored: a recording's per-tensor digests are taken as its
bytes stream to disk, and a training job that resumes from a checkpoint goes on from the digests' saved
state instead of reading back gigabytes it has already written.

hashlib's objects cannot be serialised, so this calls the OpenSSL library that hashlib itself has loaded:
its SHA256_Init/Update/Final, whose whole state is a plain 112-byte struct (the same code hashlib runs, so
as fast). Where that library or those functions are missing, `available()` says so and checkpoints are off.
"""

from __future__ import annotations

import ctypes
import hashlib  # loads OpenSSL's libcrypto into the process
from pathlib import Path

_STATE_BYTES = 112  # sizeof(SHA256_CTX) in OpenSSL 1.1 and 3.x: eight words of hash, counts, a 64-byte block


def _libcrypto():
    maps = Path("/proc/self/maps")
    paths = sorted({line.split()[-1] for line in maps.read_text().splitlines() if "libcrypto" in line}) if maps.exists() else []
    for path in paths:
        try:
            library = ctypes.CDLL(path)
            for name in ("SHA256_Init", "SHA256_Update", "SHA256_Final"):
                getattr(library, name).restype = ctypes.c_int
            library.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            return library
        except (OSError, AttributeError):
            continue
    return None


_LIBRARY = _libcrypto()


def available() -> str | None:
    """None where a saveable SHA-256 is at hand, else why not."""
    return None if _LIBRARY is not None else "this Python's OpenSSL offers no SHA256_Init (needed to save a digest's state)"


def sha256():
    """A saveable SHA-256 where there is one (else hashlib's, and checkpoints are off)."""
    return Sha256() if _LIBRARY is not None else hashlib.sha256()


class Sha256:
    """hashlib.sha256's update/hexdigest, plus `state()` and `Sha256(state)`."""

    def __init__(self, state: bytes | None = None):
        self._context = ctypes.create_string_buffer(_STATE_BYTES)
        if state is None:
            _LIBRARY.SHA256_Init(self._context)
        else:
            ctypes.memmove(self._context, state, _STATE_BYTES)

    def update(self, data) -> None:
        """`data`: bytes, or a writable buffer (read in place, not copied)."""
        if isinstance(data, bytes):
            pointer, size = ctypes.c_char_p(data), len(data)
        else:
            view = memoryview(data).cast("B")
            pointer, size = (ctypes.c_char * view.nbytes).from_buffer(view) if view.nbytes else None, view.nbytes
        if size:
            _LIBRARY.SHA256_Update(self._context, pointer, size)

    def state(self) -> bytes:
        return self._context.raw

    def hexdigest(self) -> str:
        copy = ctypes.create_string_buffer(self._context.raw, _STATE_BYTES)  # finishing spoils the state
        out = ctypes.create_string_buffer(32)
        _LIBRARY.SHA256_Final(out, copy)
        return out.raw.hex()
