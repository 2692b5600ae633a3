"""Tiny datasets in the official file formats, so the `rehearsal` profile runs the paper's exact code path on a CPU.

``write_rehearsal_data(root)`` writes, with random pixels and labels:

- ``cifar-10-batches-py/`` (data_batch_1..5, test_batch, batches.meta) and ``cifar-100-python/`` (train, test, meta),
  pickled with bytes keys as the official python releases are;
- ``tiny-imagenet-200/`` (wnids.txt with 200 WordNet ids, ``train/<wnid>/images/*.JPEG``, ``val/images`` and
  ``val/val_annotations.txt``);
- ``CIFAR-10-C/`` and ``CIFAR-100-C/`` (``<corruption>.npy`` with the 5 severities stacked, ``labels.npy``), the 19
  corruptions of the official release;
- ``Tiny-ImageNet-C/<corruption>/<severity>/<wnid>/*.JPEG``, the 15 corruptions of its official release.

The pixels are noise: the rehearsal shows that every notebook, table and figure of the paper profile assembles, not
what it finds.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from .corruptions import CORRUPTIONS

# Hendrycks & Dietterich's Tiny-ImageNet-C has 15 corruptions: CIFAR-10-C's 19 less the four "extra" ones.
TINY_IMAGENET_C_CORRUPTIONS: tuple[str, ...] = tuple(
    c for c in CORRUPTIONS if c not in ("speckle_noise", "gaussian_blur", "spatter", "saturate"))
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
N_TEST = 16           # the official test sets' first images, all a rehearsal evaluates
N_TRAIN_PER_BATCH = 16
TINY_CLASSES = 200


def _pixels(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _pickle(path: Path, body: dict) -> None:
    path.write_bytes(pickle.dumps(body, protocol=2))


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    """N×32×32×3 → N×3072 in the official row layout (the 1024 reds, then greens, then blues)."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def write_cifar10(root: Path, rng: np.random.Generator) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in [(f"data_batch_{i}", N_TRAIN_PER_BATCH) for i in range(1, 6)] + [("test_batch", N_TEST)]:
        _pickle(folder / name, {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
                                b"data": _cifar_rows(_pixels(rng, n, 32)),
                                b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]})
    _pickle(folder / "batches.meta", {b"label_names": [c.encode() for c in CIFAR10_NAMES],
                                      b"num_cases_per_batch": N_TRAIN_PER_BATCH, b"num_vis": 3072})


def write_cifar100(root: Path, rng: np.random.Generator) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", 5 * N_TRAIN_PER_BATCH), ("test", N_TEST)):
        fine = rng.integers(0, 100, n)
        _pickle(folder / name, {b"filenames": [f"{name}_{i}.png".encode() for i in range(n)],
                                b"batch_label": name.encode(), b"fine_labels": fine.tolist(),
                                b"coarse_labels": (fine // 5).tolist(), b"data": _cifar_rows(_pixels(rng, n, 32))})
    _pickle(folder / "meta", {b"fine_label_names": [f"class_{i:02d}".encode() for i in range(100)],
                              b"coarse_label_names": [f"super_{i:02d}".encode() for i in range(20)]})


def _jpeg(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)


def write_tiny_imagenet(root: Path, rng: np.random.Generator) -> list[str]:
    """200 classes, one training image each; N_TEST validation images, labelled in val_annotations.txt."""
    folder = root / "tiny-imagenet-200"
    wnids = [f"n{10_000_000 + i:08d}" for i in range(TINY_CLASSES)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for wnid, pixels in zip(wnids, _pixels(rng, TINY_CLASSES, 64)):
        _jpeg(folder / "train" / wnid / "images" / f"{wnid}_0.JPEG", pixels)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t63\t63\n")
    labels = rng.integers(0, TINY_CLASSES, N_TEST)
    lines = []
    for i, (label, pixels) in enumerate(zip(labels, _pixels(rng, N_TEST, 64))):
        _jpeg(folder / "val" / "images" / f"val_{i}.JPEG", pixels)
        lines.append(f"val_{i}.JPEG\t{wnids[label]}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return [wnids[label] for label in labels]


def write_cifar_c(root: Path, folder_name: str, num_classes: int, rng: np.random.Generator) -> None:
    folder = root / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "labels.npy", np.tile(rng.integers(0, num_classes, N_TEST), 5).astype(np.uint8))
    for name in CORRUPTIONS:
        np.save(folder / f"{name}.npy", _pixels(rng, 5 * N_TEST, 32))


def write_tiny_imagenet_c(root: Path, val_wnids: list[str], rng: np.random.Generator) -> None:
    """The release's layout: one folder per corruption and severity, the validation images filed under their wnid."""
    for name in TINY_IMAGENET_C_CORRUPTIONS:
        for severity in range(1, 6):
            for i, (wnid, pixels) in enumerate(zip(val_wnids, _pixels(rng, len(val_wnids), 64))):
                _jpeg(root / "Tiny-ImageNet-C" / name / str(severity) / wnid / f"val_{i}.JPEG", pixels)


def write_rehearsal_data(root: str | Path, seed: int = 0) -> Path:
    """Every dataset the paper profile reads, tiny, in its official format, under `root` (returned)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    write_cifar10(root, rng)
    write_cifar100(root, rng)
    val_wnids = write_tiny_imagenet(root, rng)
    write_cifar_c(root, "CIFAR-10-C", 10, rng)
    write_cifar_c(root, "CIFAR-100-C", 100, rng)
    write_tiny_imagenet_c(root, val_wnids, rng)
    (root / "REHEARSAL").write_text("Random pixels in the official formats (tempscale.rehearsal); not real data.\n")
    return root


if __name__ == "__main__":
    import sys
    print(write_rehearsal_data(sys.argv[1]))
