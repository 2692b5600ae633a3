"""Datasets, as float images in [0, 1] with integer labels.

Every loader returns a `DataBundle`: train and test `Dataset`s yielding `(image CHW float in [0, 1], label)`, plus the
facts a model needs (classes, image size, normalisation statistics). Normalisation lives inside the model, so attack
budgets such as ε = 8/255 are in pixel units, as in the paper.

- ``digits``: sklearn's bundled 8×8 handwritten digits, the offline default. Fixed stratified split (1347 train /
  450 test, seed 0), upsampled to the requested size and replicated to 3 channels so every architecture accepts it.
- ``cifar10`` / ``cifar100``: torchvision's standard layout under the data directory; downloaded only when asked.
- ``tinyimagenet``: the official ``tiny-imagenet-200`` folder (``wnids.txt``, ``train/<wnid>/images``,
  ``val/images`` + ``val/val_annotations.txt``); the labelled val split is the test split.
- ``imagefolder:<path>``: any ``<path>/train/<class>/*`` and ``<path>/val|test/<class>/*`` tree.
- The official ``-C`` sets: ``<corruption>.npy`` holding 5×N images (severities 1–5 stacked) and ``labels.npy``
  (see `load_corrupted`).
"""
from __future__ import annotations

import functools
import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .corruptions import CORRUPTIONS
from .errors import DataNotFoundError, InvalidSpecError
from .paths import data_dir
from .vocab import dataset_name

DATASETS = ("digits", "cifar10", "cifar100", "tinyimagenet", "imagefolder:<path>")
NATIVE_SIZE = {"digits": 32, "cifar10": 32, "cifar100": 32, "tinyimagenet": 64}
NUM_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "tinyimagenet": 200}

# Per-channel statistics of the training sets (the values every CIFAR codebase uses); digits' are measured at load.
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "tinyimagenet": ((0.4802, 0.4481, 0.3975), (0.2302, 0.2265, 0.2262)),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

HOW_TO_GET = {
    "cifar10": "pass --download (needs internet) or unpack the official python release (cifar-10-python.tar.gz) so that "
               "this folder holds data_batch_1..5, test_batch and batches.meta",
    "cifar100": "pass --download (needs internet) or unpack the official python release (cifar-100-python.tar.gz) so that "
                "this folder holds train, test and meta",
    "tinyimagenet": "unzip the official tiny-imagenet-200.zip (cs231n.stanford.edu) there",
    "imagefolder": "create <path>/train/<class>/*.png and <path>/val/<class>/*.png",
}


def default_data_dir() -> Path:
    return data_dir()


class TensorImageDataset(Dataset):
    """Images kept in memory as uint8 NCHW (compact) and served as float in [0, 1]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W)")
        self.images, self.labels = images, labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i].float() / 255.0, self.labels[i]

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch by fancy indexing: much faster than collating single items."""
        return self.images[index].float() / 255.0, self.labels[index]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> "TensorImageDataset":
        """The same images and labels on `device` (self when already there): a GPU trainer keeps the whole set
        resident as uint8 (CIFAR-10: 150 MB) and indexes batches there, with no per-step host copies."""
        device = torch.device(device)
        if self.images.device == device and self.labels.device == device:
            return self
        return TensorImageDataset(self.images.to(device), self.labels.to(device))

    def tensors(self, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n examples (all if None) as float images and labels."""
        n = len(self) if n is None else min(n, len(self))
        return self.batch(torch.arange(n, device=self.images.device))


@dataclass
class DataBundle:
    name: str
    train: Dataset
    test: Dataset
    num_classes: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    class_names: list[str] = field(default_factory=list)


def load_dataset(name: str, image_size: int | None = None, data_dir: str | Path | None = None,
                 download: bool = False) -> DataBundle:
    """Load a dataset by name; see the module docstring for the names and layouts."""
    check_image_size(image_size)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if name == "digits":
        return load_digits(image_size or NATIVE_SIZE["digits"])
    if name in ("cifar10", "cifar100"):
        return _resize_bundle(load_cifar(name, data_dir, download), image_size)
    if name == "tinyimagenet":
        return _resize_bundle(load_tiny_imagenet(data_dir), image_size)
    if name.startswith("imagefolder:"):
        return _resize_bundle(load_image_folder(Path(name.split(":", 1)[1])), image_size)
    raise InvalidSpecError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def check_dataset_name(name: str) -> None:
    dataset_name(name)


MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024   # below 8 the networks' downsampling leaves nothing; above, memory runs out


def check_image_size(image_size: int | None) -> None:
    """None (the dataset's native size) or an integer in MIN_IMAGE_SIZE..MAX_IMAGE_SIZE."""
    if image_size is None:
        return
    if isinstance(image_size, bool) or not isinstance(image_size, int) \
            or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise InvalidSpecError(f"image size must be an integer in {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE} pixels "
                               f"(or unset for the native size), got {image_size!r}")


def load_digits(image_size: int = 32) -> DataBundle:
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    digits = sk_load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=image_size, mode="bilinear", align_corners=False).clamp(0, 1).repeat(1, 3, 1, 1)
    images = (x * 255).round().to(torch.uint8)
    labels = torch.tensor(digits.target)
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=0.25, random_state=0,
                                           stratify=digits.target)
    train_idx, test_idx = torch.tensor(train_idx), torch.tensor(test_idx)
    train_float = images[train_idx].float() / 255
    mean = tuple(train_float.mean(dim=(0, 2, 3)).tolist())
    std = tuple(train_float.std(dim=(0, 2, 3)).tolist())
    return DataBundle("digits", TensorImageDataset(images[train_idx], labels[train_idx]),
                      TensorImageDataset(images[test_idx], labels[test_idx]), 10, image_size, mean, std,
                      source=f"sklearn.datasets.load_digits, 8x8 upsampled to {image_size}x{image_size}",
                      class_names=[str(i) for i in range(10)])


CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels",
                "batches.meta", "label_names"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", "meta", "fine_label_names"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """The CIFAR "python version" files are pickles; admit only what they contain (numpy arrays and builtins),
    so a tampered file cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _read_cifar_pickle(path: Path) -> dict:
    with open(path, "rb") as f:
        raw = _ArrayOnlyUnpickler(f, encoding="latin1").load()
    if not isinstance(raw, dict):
        raise ValueError(f"holds a {type(raw).__name__}, not a dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


# What a damaged or foreign data file raises while being read: all of it means "malformed", never a bug here.
MALFORMED = (pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError, IndexError, AttributeError,
             OSError, UnicodeDecodeError, OverflowError)


def _cifar_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, list[int]]:
    """(images N×3×32×32 uint8, labels) of one CIFAR batch file, checked: as many labels as images, each an
    integer class index."""
    batch = _read_cifar_pickle(path)
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"'data' is {data.dtype} of shape {data.shape}, expected uint8 of shape (N, 3072)")
    labels = list(batch[label_key])
    if len(labels) != len(data):
        raise ValueError(f"{len(labels)} labels for {len(data)} images")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < num_classes
               for v in labels):
        raise ValueError(f"labels must be integers in 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), [int(v) for v in labels]


def load_cifar(name: str, data_dir: Path, download: bool = False) -> DataBundle:
    """CIFAR-10/100 from torchvision's layout (``cifar-10-batches-py`` / ``cifar-100-python`` under data_dir)."""
    folder, train_files, test_files, label_key, meta_file, names_key = CIFAR_FILES[name]
    root = data_dir / folder
    if download and not root.exists():
        from torchvision.datasets import CIFAR10, CIFAR100

        (CIFAR10 if name == "cifar10" else CIFAR100)(root=str(data_dir), train=True, download=True)
    if not root.is_dir():
        raise DataNotFoundError(f"{name}: no folder {root.resolve()}; {HOW_TO_GET[name]}")
    splits = {}
    for split, files in (("train", train_files), ("test", test_files)):
        images, labels = [], []
        for file in files:
            path = root / file
            if not path.exists():
                raise DataNotFoundError(f"{name}: {root.resolve()} lacks {file}; {HOW_TO_GET[name]}")
            try:
                data, batch_labels = _cifar_batch(path, label_key, NUM_CLASSES[name])
            except MALFORMED as err:
                raise DataNotFoundError(f"{name}: {path.resolve()} is malformed ({_reason(err)}); "
                                        f"{HOW_TO_GET[name]}") from None
            images.append(data)
            labels.extend(batch_labels)
        splits[split] = TensorImageDataset(torch.from_numpy(np.concatenate(images)), torch.tensor(labels))
    meta_path = root / meta_file
    class_names = []
    if meta_path.exists():
        try:
            class_names = [_text(c) for c in _read_cifar_pickle(meta_path)[names_key]]
        except MALFORMED as err:
            raise DataNotFoundError(f"{name}: {meta_path.resolve()} is malformed ({_reason(err)}); "
                                    f"{HOW_TO_GET[name]}") from None
    mean, std = STATS[name]
    return DataBundle(name, splits["train"], splits["test"], NUM_CLASSES[name], 32, mean, std,
                      source=f"{folder} at {root.resolve()}", class_names=class_names)


def _text(value) -> str:
    """A class name as text: files written by Python 3 hold bytes (b'airplane'), Python 2's official ones str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".splitlines()[0][:200]


def _read_image(path: Path) -> torch.Tensor:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)
    except MALFORMED as err:  # PIL raises OSError subclasses (UnidentifiedImageError) for damaged files
        raise DataNotFoundError(f"image {path} cannot be read ({_reason(err)}); replace or delete it") from None


class FileImageDataset(Dataset):
    """Images read from files on demand (large sets such as Tiny-ImageNet), served as float in [0, 1]."""

    def __init__(self, files: list[Path], labels: list[int], size: int | None = None):
        self.files, self.labels, self.size = files, torch.tensor(labels, dtype=torch.long), size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        img = _read_image(self.files[i]).float() / 255.0
        if self.size is not None and img.shape[-1] != self.size:
            img = F.interpolate(img[None], size=self.size, mode="bilinear", antialias=True,
                                align_corners=False)[0].clamp(0, 1)
        return img, self.labels[i]


def load_tiny_imagenet(data_dir: Path) -> DataBundle:
    root = data_dir / "tiny-imagenet-200"
    hint = HOW_TO_GET["tinyimagenet"]
    wnids_file, annotations = root / "wnids.txt", root / "val" / "val_annotations.txt"
    for required, is_right_kind in ((wnids_file, Path.is_file), (root / "train", Path.is_dir),
                                    (annotations, Path.is_file)):
        if not required.exists():
            raise DataNotFoundError(f"Tiny-ImageNet: {required.resolve()} is missing; {hint}")
        if not is_right_kind(required):
            raise DataNotFoundError(f"Tiny-ImageNet: {required.resolve()} should be a "
                                    f"{'folder' if is_right_kind is Path.is_dir else 'file'}; {hint}")
    wnids = [w.strip() for w in wnids_file.read_text().split() if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}
    train_files, train_labels = [], []
    for wnid in wnids:
        files = sorted((root / "train" / wnid / "images").glob("*.JPEG"))
        train_files += files
        train_labels += [index[wnid]] * len(files)
    val_files, val_labels = [], []
    for line in annotations.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in index:
            raise DataNotFoundError(f"Tiny-ImageNet: malformed line in {annotations}: {line!r}; {hint}")
        val_files.append(root / "val" / "images" / parts[0])
        val_labels.append(index[parts[1]])
    if not train_files or not val_files:
        raise DataNotFoundError(f"Tiny-ImageNet under {root.resolve()} has no images; {hint}")
    mean, std = STATS["tinyimagenet"]
    return DataBundle("tinyimagenet", FileImageDataset(train_files, train_labels),
                      FileImageDataset(val_files, val_labels), len(wnids), 64, mean, std,
                      source=f"tiny-imagenet-200 at {root.resolve()}", class_names=wnids)


def load_image_folder(path: Path) -> DataBundle:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    hint = HOW_TO_GET["imagefolder"]
    test_dir = next((path / s for s in ("val", "test") if (path / s).is_dir()), None)
    if not (path / "train").is_dir() or test_dir is None:
        raise DataNotFoundError(f"image folder {path.resolve()} needs train/ and val/ (or test/) subfolders; {hint}")
    classes = sorted(d.name for d in (path / "train").iterdir() if d.is_dir())
    if not classes:
        raise DataNotFoundError(f"no class folders in {(path / 'train').resolve()}; {hint}")

    def scan(split_dir: Path) -> tuple[list[Path], list[int]]:
        files, labels = [], []
        for label, cls in enumerate(classes):
            found = sorted(f for f in (split_dir / cls).glob("*") if f.suffix.lower() in IMG_EXTENSIONS)
            files += found
            labels += [label] * len(found)
        return files, labels

    missing = [cls for cls in classes if not (test_dir / cls).is_dir()]
    if missing:
        raise DataNotFoundError(f"{test_dir.resolve()} lacks the class folder(s) {', '.join(missing[:5])} that "
                                f"train/ has; every class needs a folder in both; {hint}")
    train, test = scan(path / "train"), scan(test_dir)
    for split_dir, (files, _) in ((path / "train", train), (test_dir, test)):
        if not files:
            raise DataNotFoundError(f"no images under {split_dir.resolve()}; {hint}")
    size = _read_image(train[0][0]).shape[-1]
    mean, std = STATS["imagefolder"]
    return DataBundle(f"imagefolder:{path}", FileImageDataset(*train, size=size), FileImageDataset(*test, size=size),
                      len(classes), size, mean, std, source=f"image folder at {path.resolve()}", class_names=classes)


def _resize_bundle(bundle: DataBundle, image_size: int | None) -> DataBundle:
    """Resize to image_size when it differs from the native size (in memory sets are resized once)."""
    if image_size is None or image_size == bundle.image_size:
        return bundle
    for split in ("train", "test"):
        ds = getattr(bundle, split)
        if isinstance(ds, TensorImageDataset):
            x = F.interpolate(ds.images.float(), size=image_size, mode="bilinear", antialias=True, align_corners=False)
            setattr(bundle, split, TensorImageDataset(x.round().clamp(0, 255).to(torch.uint8), ds.labels))
        else:
            ds.size = image_size
    bundle.image_size = image_size
    return bundle


# --- data fingerprints: what a run was trained on, part of its identity ----------------------------------------------

_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}   # (path, size, mtime_ns) → sha256: each file is hashed once


def _file_digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        hasher = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                hasher.update(chunk)
        _FILE_DIGESTS[key] = hasher.hexdigest()
    return _FILE_DIGESTS[key]


def _tree_digest(root: Path, what: str) -> str:
    """sha256 over every file under `root` (relative path, size, content digest), hidden files skipped."""
    if not root.is_dir():
        raise DataNotFoundError(f"{what}: {root.resolve()} is missing; {HOW_TO_GET.get(what, 'check the data dir')}")
    hasher = hashlib.sha256()
    for file in sorted(f for f in root.rglob("*") if f.is_file() and not any(
            part.startswith(".") for part in f.relative_to(root).parts)):
        hasher.update(f"{file.relative_to(root).as_posix()}|{file.stat().st_size}|{_file_digest(file)}\n".encode())
    return hasher.hexdigest()


@functools.lru_cache(maxsize=1)
def _digits_digest() -> str:
    from sklearn.datasets import load_digits as sk_load_digits

    digits = sk_load_digits()
    hasher = hashlib.sha256()
    for array in (np.ascontiguousarray(digits.images), np.ascontiguousarray(digits.target)):
        hasher.update(f"{array.shape}|{array.dtype}|".encode() + array.tobytes())
    return hasher.hexdigest()


def dataset_fingerprint(name: str, data_dir: str | Path | None = None) -> str:
    """A short hash of the files (or arrays) `name` is loaded from under `data_dir`: the same spec trained on other
    data is another run. File digests are cached per (path, size, mtime), so asking again costs a directory scan."""
    name = dataset_name(name)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if name == "digits":
        digest = _digits_digest()
    elif name in CIFAR_FILES:
        digest = _tree_digest(data_dir / CIFAR_FILES[name][0], name)
    elif name == "tinyimagenet":
        root = data_dir / "tiny-imagenet-200"
        hasher = hashlib.sha256()
        for part in ("wnids.txt", "train", "val"):
            target = root / part
            hasher.update(_file_digest(target).encode() if target.is_file() else _tree_digest(target, name).encode())
        digest = hasher.hexdigest()
    else:
        digest = _tree_digest(Path(name.split(":", 1)[1]), "imagefolder")
    return digest[:16]


CORRUPTED_DIRS = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C", "tinyimagenet": "Tiny-ImageNet-C"}


def corrupted_root(dataset: str, data_dir: str | Path | None = None) -> Path:
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    return data_dir / CORRUPTED_DIRS.get(dataset, f"{dataset}-C")


def has_official_corrupted(dataset: str, data_dir: str | Path | None = None) -> bool:
    root = corrupted_root(dataset, data_dir)
    return (root / "labels.npy").exists() or (dataset == "tinyimagenet" and root.is_dir())


# Datasets whose -C images must come from the official release: the generator's constants are CIFAR's (32×32).
NEEDS_OFFICIAL_CORRUPTIONS = frozenset({"tinyimagenet"})


def require_official_corrupted(dataset: str, data_dir: str | Path | None = None) -> None:
    """Raise DataNotFoundError when `dataset` can only be corrupted by its official -C release and that is absent."""
    if dataset in NEEDS_OFFICIAL_CORRUPTIONS and not has_official_corrupted(dataset, data_dir):
        raise DataNotFoundError(
            f"{corrupted_root(dataset, data_dir)} is missing: the generated corruptions are tuned for 32×32 images, "
            f"so {dataset} needs the official -C release (Hendrycks & Dietterich, zenodo) unpacked there")


def official_corruptions(dataset: str, data_dir: str | Path | None = None) -> list[str]:
    """The corruptions the official -C folder holds, in its canonical order (CIFAR-10-C: 19; Tiny-ImageNet-C: 15)."""
    root = corrupted_root(dataset, data_dir)
    if dataset == "tinyimagenet":
        present = {d.name for d in root.iterdir() if d.is_dir()} if root.is_dir() else set()
    else:
        present = {f.stem for f in root.glob("*.npy")} - {"labels"}
    return [name for name in CORRUPTIONS if name in present]


def load_corrupted(dataset: str, corruption: str, severity: int,
                   data_dir: str | Path | None = None) -> TensorImageDataset | FileImageDataset:
    """One severity of one official corruption set.

    CIFAR-10-C / CIFAR-100-C: ``<root>/<corruption>.npy`` holds the 5 severities stacked (5×N images, N×HWC uint8
    each), ``<root>/labels.npy`` the labels (N or 5×N). Tiny-ImageNet-C: ``<root>/<corruption>/<severity>/<wnid>/*``.
    """
    if not 1 <= severity <= 5:
        raise InvalidSpecError(f"severity must be 1..5, got {severity}")
    root = corrupted_root(dataset, data_dir)
    hint = ("download the official -C release (Hendrycks & Dietterich, zenodo) and unpack it there, "
            "or let tempscale generate the corruptions (the default when the folder is absent)")
    if dataset == "tinyimagenet":
        return _load_tiny_corrupted(root, corruption, severity, hint)
    images_file, labels_file = root / f"{corruption}.npy", root / "labels.npy"
    for f in (images_file, labels_file):
        if not f.exists():
            raise DataNotFoundError(f"{f.resolve()} is missing; {hint}")
    try:
        images = np.load(images_file, mmap_mode="r")
        labels = np.load(labels_file)
    except ValueError as err:
        raise DataNotFoundError(f"{images_file} or {labels_file} is not a valid .npy file ({err}); {hint}") from None
    if images.ndim != 4 or images.shape[0] % 5 or images.shape[-1] != 3:
        raise DataNotFoundError(f"{images_file} has shape {images.shape}; expected (5*N, H, W, 3); {hint}")
    n = images.shape[0] // 5
    part = np.array(images[(severity - 1) * n: severity * n])   # copy: reads one severity off the read-only memmap
    labels = labels[(severity - 1) * n: severity * n] if len(labels) == 5 * n else labels
    if len(labels) != n:
        raise DataNotFoundError(f"{labels_file} has {len(labels)} labels for {n} images per severity; {hint}")
    images_nchw = torch.from_numpy(part).permute(0, 3, 1, 2).contiguous()
    return TensorImageDataset(images_nchw, torch.from_numpy(np.array(labels, dtype=np.int64)))


def _load_tiny_corrupted(root: Path, corruption: str, severity: int, hint: str) -> FileImageDataset:
    folder = root / corruption / str(severity)
    wnids_file = root.parent / "tiny-imagenet-200" / "wnids.txt"
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder.resolve()} is missing; {hint}")
    wnids = (wnids_file.read_text().split() if wnids_file.exists()
             else sorted(d.name for d in folder.iterdir() if d.is_dir()))
    files, labels = [], []
    for label, wnid in enumerate(wnids):
        found = sorted((folder / wnid).glob("*"))
        files += found
        labels += [label] * len(found)
    return FileImageDataset(files, labels)


def first_n(dataset: Dataset, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n examples of any dataset as (images, labels) tensors: the fixed evaluation subset."""
    if isinstance(dataset, TensorImageDataset):
        return dataset.tensors(n)
    n = len(dataset) if n is None else min(n, len(dataset))
    items = [dataset[i] for i in range(n)]
    return torch.stack([x for x, _ in items]), torch.stack([torch.as_tensor(y) for _, y in items])
