"""Loaders on small files written here in the real formats, and the errors for missing or malformed data."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from tempscale.data import has_official_corrupted, load_corrupted, load_dataset
from tempscale.errors import DataNotFoundError, InvalidSpecError


def test_digits_split_is_fixed_and_upsampled():
    a, b = load_dataset("digits", image_size=16), load_dataset("digits", image_size=16)
    assert (len(a.train), len(a.test), a.num_classes) == (1347, 450, 10)
    x, y = a.test.tensors(5)
    assert x.shape == (5, 3, 16, 16) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(a.test.labels, b.test.labels)
    assert torch.bincount(a.test.labels).min() >= 43   # stratified


def _write_cifar(root, name, n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    if name == "cifar10":
        folder, label_key = root / "cifar-10-batches-py", "labels"
        files = [(f"data_batch_{i}", n_train // 5) for i in range(1, 6)] + [("test_batch", n_test)]
        meta = ("batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    else:
        folder, label_key = root / "cifar-100-python", "fine_labels"
        files = [("train", n_train), ("test", n_test)]
        meta = ("meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    folder.mkdir(parents=True)
    for file, n in files:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), label_key: rng.integers(0, 10, n).tolist()}
        (folder / file).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / meta[0]).write_bytes(pickle.dumps(meta[1], protocol=2))
    return folder


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_torchvision_layout(tmp_path, name):
    folder = _write_cifar(tmp_path, name)
    bundle = load_dataset(name, data_dir=tmp_path)
    assert (len(bundle.train), len(bundle.test)) == (20, 10)
    x, y = bundle.train[3]
    assert x.shape == (3, 32, 32) and 0 <= x.min() <= x.max() <= 1
    raw = pickle.loads((folder / ("data_batch_1" if name == "cifar10" else "train")).read_bytes())
    assert torch.equal((x * 255).round().to(torch.uint8).flatten(), torch.from_numpy(raw["data"][3]))
    assert bundle.class_names[:2] == ["c0", "c1"]
    assert load_dataset(name, image_size=16, data_dir=tmp_path).train[0][0].shape == (3, 16, 16)


def test_cifar_missing_names_path_and_remedy(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"cifar-10-batches-py.*--download"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_pickle_with_code_is_refused(tmp_path):
    folder = _write_cifar(tmp_path, "cifar10")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    (folder / "test_batch").write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(DataNotFoundError, match="malformed"):
        load_dataset("cifar10", data_dir=tmp_path)


def _jpeg(path, seed, size=64):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def test_tiny_imagenet_official_layout(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n01443537", "n01629819", "n01641577"]
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for c, wnid in enumerate(wnids):
        for k in range(2):
            _jpeg(root / "train" / wnid / "images" / f"{wnid}_{k}.JPEG", 10 * c + k)
    lines = []
    for k, wnid in enumerate([wnids[2], wnids[0], wnids[1], wnids[2]]):
        _jpeg(root / "val" / "images" / f"val_{k}.JPEG", 100 + k)
        lines.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    bundle = load_dataset("tinyimagenet", data_dir=tmp_path)
    assert (len(bundle.train), len(bundle.test), bundle.num_classes, bundle.image_size) == (6, 4, 3, 64)
    assert bundle.test.labels.tolist() == [2, 0, 1, 2]
    x, y = bundle.test[0]
    assert x.shape == (3, 64, 64) and y == 2
    assert load_dataset("tinyimagenet", image_size=32, data_dir=tmp_path).train[0][0].shape == (3, 32, 32)


def test_tiny_imagenet_missing_annotations(tmp_path):
    (tmp_path / "tiny-imagenet-200" / "train").mkdir(parents=True)
    (tmp_path / "tiny-imagenet-200" / "wnids.txt").write_text("n0\n")
    with pytest.raises(DataNotFoundError, match="val_annotations.txt"):
        load_dataset("tinyimagenet", data_dir=tmp_path)


def test_image_folder(tmp_path):
    for split in ("train", "val"):
        for c in ("cat", "dog"):
            for k in range(3):
                path = tmp_path / "set" / split / c / f"{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((24, 24, 3), 40 * k, dtype=np.uint8)).save(path)
    bundle = load_dataset(f"imagefolder:{tmp_path / 'set'}")
    assert bundle.class_names == ["cat", "dog"] and len(bundle.train) == 6 and bundle.image_size == 24
    assert bundle.test[4][1] == 1


def test_image_folder_without_val(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match="val/"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_official_corrupted_npy_layout(tmp_path):
    root = tmp_path / "CIFAR-10-C"
    root.mkdir()
    n = 4
    images = np.stack([np.full((32, 32, 3), 10 * s + i, dtype=np.uint8) for s in range(5) for i in range(n)])
    np.save(root / "fog.npy", images)
    np.save(root / "labels.npy", np.tile(np.arange(n), 5))
    assert has_official_corrupted("cifar10", tmp_path)
    sev3 = load_corrupted("cifar10", "fog", 3, tmp_path)
    assert len(sev3) == n
    assert sev3.images[1, 0, 0, 0].item() == 10 * 2 + 1          # severity 3 = the third block of N
    assert sev3.labels.tolist() == list(range(n))
    with pytest.raises(DataNotFoundError, match="snow.npy"):
        load_corrupted("cifar10", "snow", 3, tmp_path)
    with pytest.raises(InvalidSpecError):
        load_corrupted("cifar10", "fog", 6, tmp_path)


def test_unknown_dataset():
    with pytest.raises(InvalidSpecError, match="digits"):
        load_dataset("mnist")
