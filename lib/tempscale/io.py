"""Files that are whole or absent, and tensor files that are checked before use.

Every writer goes through a temp file in the target folder, fsync and `os.replace`, so a reader (or a crash) never
sees half a file. Tensor files written by `save_verified` carry a ``.sha256`` sidecar; `load_verified` refuses a file
whose bytes do not match it and unpickles with ``weights_only=True`` only. The run store (weights, checkpoints) and
the evaluation cache (per-batch results) both use these.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import CorruptCheckpointError

SIDECAR_SUFFIX = ".sha256"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Indented, key-sorted JSON (values JSON cannot hold are written as their str)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def sidecar_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def save_verified(obj: Any, path: Path) -> None:
    """torch.save atomically, then the sha256 sidecar: a file without a matching sidecar is never trusted."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(Path(path), data)
    atomic_write_text(sidecar_path(path), hashlib.sha256(data).hexdigest())


def load_verified(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a file written by `save_verified`; raise CorruptCheckpointError if missing, truncated, altered or
    unreadable (the message says which file to delete to recompute it)."""
    path = Path(path)
    advice = f"delete {path} (and {sidecar_path(path).name}) to recompute it"
    try:
        data = path.read_bytes()
        expected = sidecar_path(path).read_text().strip()
    except FileNotFoundError as err:
        raise CorruptCheckpointError(f"{err.filename} is missing; {advice}") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise CorruptCheckpointError(f"{path} does not match its checksum (truncated or altered); {advice}")
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise CorruptCheckpointError(f"{path} cannot be read ({type(err).__name__}: {err}); {advice}") from None


def remove_verified(path: Path) -> None:
    """Delete a verified file and its sidecar (either may be missing)."""
    Path(path).unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)


__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "save_verified", "load_verified",
           "remove_verified", "sidecar_path"]
