"""Saved-program files: one safetensors file, versioned metadata, atomic writes, checksums.

Layout (format version 1). A standard safetensors file, readable with any safetensors
implementation and no weightsynth code:

* tensors: the program's arrays (for the optimal program ``Z0``, ``Theta``, ``ts``, ``X``);
* metadata (all strings): ``format`` = ``"weightsynth.program"``, ``format_version``,
  ``kind`` (``"optimal"`` or ``"constant"``), ``weightsynth_version``, ``activation``,
  ``gain``, ``beta``, ``t0``, ``t1``, ``n``, ``L``, ``dtype``, ``solver`` (JSON) and
  ``sha256``, the SHA-256 of the tensors' bytes in sorted-name order.

Writes go to a temporary file in the same folder, then ``os.replace``: a crash never
leaves a half-written file under the final name. Loads check the header, the format, the
version, the checksum and the shapes, and raise :class:`ProgramFileError` otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save

from .._files import write_atomically
from ..errors import ProgramFileError

FORMAT = "weightsynth.program"
FORMAT_VERSION = 1


def _digest(tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        h.update(name.encode())
        h.update(str(arr.dtype).encode())
        h.update(repr(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`weightsynth._files.write_atomically`),
    with errors that name the path."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"cannot save to {str(path)!r}: folder {str(folder)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"cannot save to {str(path)!r}: it is a folder; give a file name, "
                         "e.g. 'prog.safetensors'")
    try:
        write_atomically(path, data)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise OSError(exc.errno, f"cannot save to {str(path)!r}: {why}") from None


def save_program_file(path, tensors: dict[str, np.ndarray], meta: dict[str, str]) -> None:
    """Save arrays and metadata as a versioned, checksummed safetensors file (atomically)."""
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    full = {"format": FORMAT, "format_version": str(FORMAT_VERSION), **meta,
            "sha256": _digest(tensors)}
    atomic_write_bytes(path, _st_save(tensors, metadata=full))


def _read_metadata(data: bytes) -> dict[str, str]:
    if len(data) < 8:
        raise ProgramFileError("file is too short to be a safetensors file")
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or 8 + n > len(data):
        raise ProgramFileError("file header is truncated or not a safetensors header")
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError:
        raise ProgramFileError("file header is not valid JSON: not a safetensors file") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        raise ProgramFileError("file has no metadata: not a weightsynth program file")
    return meta


def load_program_file(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read and validate a program file; return (tensors, metadata)."""
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise ProgramFileError(f"{str(path)!r} is a folder, not a program file")
        raise FileNotFoundError(f"no program file at {str(path)!r}")
    data = path.read_bytes()
    try:
        meta = _read_metadata(data)
    except ProgramFileError as exc:
        raise ProgramFileError(f"{str(path)!r}: {exc}") from None
    if meta.get("format") != FORMAT:
        raise ProgramFileError(
            f"{str(path)!r} is not a weightsynth program file (format={meta.get('format')!r})"
        )
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise ProgramFileError(
            f"{str(path)!r} has a bad format_version {meta.get('format_version')!r}"
        ) from None
    if version > FORMAT_VERSION or version < 1:
        raise ProgramFileError(
            f"{str(path)!r} has format version {version}; this weightsynth reads up to "
            f"{FORMAT_VERSION}. Upgrade weightsynth."
        )
    try:
        tensors = _st_load(data)
    except (SafetensorError, Exception) as exc:  # noqa: BLE001
        raise ProgramFileError(f"{str(path)!r} is truncated or corrupted: {exc}") from None
    if _digest(tensors) != meta.get("sha256"):
        raise ProgramFileError(f"{str(path)!r} is corrupted: checksum mismatch")
    return tensors, meta


def require(meta: dict[str, str], tensors: dict[str, np.ndarray], keys, arrays) -> None:
    """Raise ProgramFileError unless all metadata ``keys`` and tensor ``arrays`` exist."""
    for k in keys:
        if k not in meta:
            raise ProgramFileError(f"program file metadata lacks {k!r}")
    for a in arrays:
        if a not in tensors:
            raise ProgramFileError(f"program file lacks the array {a!r}")
