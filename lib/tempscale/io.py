"""Files that are whole or absent, and stored files that are checked before use.

Every writer goes through a temp file in the target folder, fsync and `os.replace`, so a reader (or a crash) never
sees half a file. Files get the permissions the umask allows (group-readable by default), so a run store on a shared
filesystem works for a group.

- Tensor files written by `save_verified` carry a ``.sha256`` sidecar; `load_verified` refuses a file whose bytes do
  not match it and unpickles with ``weights_only=True`` only. The data goes first and the sidecar second, so a crash
  between the two leaves a file that fails its check: callers recompute it (the run store keeps the previous
  checkpoint for exactly that case).
- JSON files written by `write_json_verified` carry their digest inside (one write, nothing to tear apart):
  `read_json_verified` refuses a file whose content does not match it.
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


DIGEST_KEY = "_sha256"
WRAPPED_KEY = "_value"   # a non-dict JSON value is stored as {"_value": value, "_sha256": digest}


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (setting it is not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """What `open()` would give a new file: 0o666 less the umask (mkstemp alone would make it owner-only)."""
    return 0o666 & ~current_umask()


# A crashed node's lock is taken over after this long without a heartbeat (they come every third of it).
LOCK_LEASE_S = 300.0


def shared_lock(path: str | Path):
    """An inter-process lock that also holds on a shared filesystem (a run store on NFS/Lustre seen by every node).

    OS locks (flock/fcntl, filelock's default) are not reliable across NFS clients, so this is filelock's
    `SoftFileLease`: a marker file created with O_EXCL (atomic on NFSv3+ and cluster filesystems) naming the
    holder's host and pid, refreshed by a heartbeat thread. A contender on the same host removes the marker of a
    process that no longer exists (a killed job's lock does not outlive it); one on another host takes it after
    `LOCK_LEASE_S` seconds without a refresh (a crashed node's lock expires). A live holder whose heartbeat stalls
    that long could be overtaken: the cost is duplicated work, never damage, since every file is written atomically
    and every computation here is deterministic.
    """
    from filelock import SoftFileLease

    return SoftFileLease(str(path), lease_duration=LOCK_LEASE_S, mode=file_mode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
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


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _json_digest(obj: Any) -> str:
    return hashlib.sha256(_canonical_json(obj).encode("utf-8")).hexdigest()


def write_json_verified(path: Path, obj: Any) -> None:
    """Indented JSON with its own sha256 inside (key ``_sha256``; a list is wrapped as ``{"_value": …}``), written
    atomically: the checksum and the content can never be torn apart."""
    plain = json.loads(json.dumps(obj, default=str))   # what a reader will get back (str for non-JSON values)
    record = dict(plain) if isinstance(plain, dict) else {WRAPPED_KEY: plain}
    record[DIGEST_KEY] = _json_digest(plain)
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_json_verified(path: Path) -> Any:
    """The value written by `write_json_verified`; CorruptCheckpointError if missing, truncated, edited or written
    without a checksum."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptCheckpointError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise CorruptCheckpointError(f"{path} is not readable JSON ({type(err).__name__}); it was truncated or "
                                     f"damaged") from None
    if not isinstance(record, dict) or not isinstance(record.get(DIGEST_KEY), str):
        raise CorruptCheckpointError(f"{path} has no checksum (damaged, or written by an older version)")
    expected = record.pop(DIGEST_KEY)
    value = record[WRAPPED_KEY] if set(record) == {WRAPPED_KEY} else record
    if _json_digest(value) != expected:
        raise CorruptCheckpointError(f"{path} does not match its checksum (edited or damaged)")
    return value


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
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptCheckpointError(f"{path} cannot be read ({type(err).__name__}); {advice}") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise CorruptCheckpointError(f"{path} does not match its checksum (truncated or altered); {advice}")
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the file is unusable
        raise CorruptCheckpointError(f"{path} cannot be read ({type(err).__name__}: {err}); {advice}") from None


def is_verified(path: Path) -> bool:
    """True when `path` and its sidecar exist and match (no unpickling: a cheap integrity check)."""
    path = Path(path)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == sidecar_path(path).read_text().strip()
    except OSError:
        return False


def remove_verified(path: Path) -> None:
    """Delete a verified file and its sidecar (either may be missing)."""
    Path(path).unlink(missing_ok=True)
    sidecar_path(path).unlink(missing_ok=True)


__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "save_verified", "load_verified",
           "remove_verified", "sidecar_path", "is_verified", "write_json_verified", "read_json_verified", "file_mode"]
