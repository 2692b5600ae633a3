"""Up-to-date stamps for ``./run_all.sh``: a notebook run is skipped when nothing it depends on has changed since it
last succeeded and everything it wrote is still there, unchanged (``--force`` runs it anyway).

Inputs (the key): the notebook's bytes, the profile and injected parameters, every source and data file of the
library (``lib/tempscale``: code, the paper's tables), the pins (``requirements.txt``, ``pyproject.toml``), the
dataset folder's listing (names, sizes, modification times), the variables that steer a run (``TEMPSCALE_DATA``,
``TEMPSCALE_FIGURES``, the ViT weight variables, thread counts, ``CUDA_VISIBLE_DEVICES``, ``PYTHONHASHSEED``) and the
machine. Outputs: the executed copy and every table and figure file the run wrote, each by SHA-256. The notebook's
kernel lists those in its output log (``TEMPSCALE_OUTPUT_LOG``, `tempscale.paths.note_output`): a scan of the figures
folder by time would also take the files of a notebook running beside it, whose later writes would then make this
run look stale.

Standard library only, run as a script (it must not pay for importing torch on every notebook)::

    python lib/tempscale/stamps.py key NOTEBOOK PROFILE [PARAM ...]        prints the input key
    python lib/tempscale/stamps.py fresh STAMP KEY                          exit 0: up to date, 1: run it
    python lib/tempscale/stamps.py record STAMP KEY OUTPUT_LOG EXECUTED     after a successful run
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

LIBRARY = Path(__file__).resolve().parent
PROJECT = LIBRARY.parents[1]
LIBRARY_SUFFIXES = (".py", ".csv", ".json")
PINS = ("requirements.txt", "pyproject.toml")
STEERING = ("TEMPSCALE_DATA", "TEMPSCALE_FIGURES", "TEMPSCALE_VIT_WEIGHTS", "TEMPSCALE_VIT_B8_WEIGHTS",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED")


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _listing(root: Path) -> list[str]:
    """Names, sizes and modification times under `root`: a changed data file changes the key, without reading it."""
    if not root.is_dir():
        return [f"absent {root}"]
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            stat = (Path(folder) / name).stat()
            entries.append(f"{os.path.relpath(Path(folder) / name, root)} {stat.st_size} {stat.st_mtime_ns}")
    return entries


def input_key(notebook: Path, profile: str, params: list[str]) -> str:
    digest = hashlib.sha256()

    def add(label: str, value: str) -> None:
        digest.update(f"{label}\0{value}\0".encode())

    add("notebook", _file_digest(notebook))
    add("profile", profile)
    add("params", json.dumps(params))
    for path in sorted(p for p in LIBRARY.rglob("*") if p.suffix in LIBRARY_SUFFIXES and "__pycache__" not in p.parts):
        add(str(path.relative_to(LIBRARY)), _file_digest(path))
    for name in PINS:
        pin = PROJECT / name
        add(name, _file_digest(pin) if pin.exists() else "absent")
    data = Path(os.environ.get("TEMPSCALE_DATA") or PROJECT / "data")
    add("data", "\n".join(_listing(data)))
    for name in STEERING:
        add(name, os.environ.get(name, "<unset>"))
    add("machine", f"{platform.machine()} {platform.python_version()} {os.cpu_count()}")
    return digest.hexdigest()


def _logged(output_log: Path) -> list[Path]:
    """The files named in the run's output log (one path per line, in the order written), each once."""
    lines = output_log.read_text(encoding="utf-8").splitlines() if output_log.is_file() else []
    return [Path(line) for line in dict.fromkeys(lines) if line]


def record(stamp: Path, key: str, output_log: Path, executed: Path) -> None:
    outputs = [executed, *_logged(output_log)]
    body = {"key": key, "outputs": {str(p): _file_digest(p) for p in outputs}}
    partial = stamp.with_name(stamp.name + ".partial")
    partial.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    os.replace(partial, stamp)


def fresh(stamp: Path, key: str) -> bool:
    try:
        body = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    if body.get("key") != key:
        return False
    return all(Path(path).is_file() and _file_digest(Path(path)) == sha for path, sha in body["outputs"].items())


def main(argv: list[str]) -> int:
    command, *rest = argv
    if command == "key":
        print(input_key(Path(rest[0]), rest[1], rest[2:]))
        return 0
    if command == "fresh":
        return 0 if fresh(Path(rest[0]), rest[1]) else 1
    if command == "record":
        record(Path(rest[0]), rest[1], Path(rest[2]), Path(rest[3]))
        return 0
    print(f"stamps.py: unknown command {command!r} (key | fresh | record)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
