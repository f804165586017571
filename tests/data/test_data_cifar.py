import hashlib
import io
import pickle
import tarfile
import urllib.error
import urllib.request
from dataclasses import replace

import numpy as np
import pytest
import torch
from data_testutils import write_fake_cifar

from ait.data import DataError, load_cifar
from ait.data import cifar as cifar_mod

URL10 = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests never reach the network: any download attempt fails like an offline machine."""
    calls = []

    def refuse(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


def _unpickle(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def test_cifar10_train_and_test(tmp_path):
    folder = write_fake_cifar(tmp_path, 10, per_batch=4)
    train = load_cifar(tmp_path, 10, train=True)
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64 and train.num_classes == 10
    assert train.classes[3] == "class3" and train.name == "cifar10-train"
    # Batches concatenated in order 1..5; each row is R(1024) G(1024) B(1024), row-major 32x32.
    b2 = _unpickle(folder / "data_batch_2")
    row = b2[b"data"][1]
    img = train.images[4 + 1]
    assert img[0, 0, :].tolist() == row[:32].tolist()  # red, first image row
    assert img[1, 2, 5] == row[1024 + 2 * 32 + 5]  # green
    assert img[2, 31, 31] == row[3071]  # blue, last pixel
    assert train.labels[4:8].tolist() == b2[b"labels"]
    test = load_cifar(tmp_path, 10, train=False)
    assert len(test) == 4 and test.name == "cifar10-test"


def test_cifar_root_may_be_the_folder_itself(tmp_path):
    folder = write_fake_cifar(tmp_path, 10)
    assert len(load_cifar(folder, 10, train=False)) == 4


def test_cifar100_uses_fine_labels(tmp_path):
    folder = write_fake_cifar(tmp_path, 100, per_batch=6)
    a = load_cifar(tmp_path, 100, train=True)
    d = _unpickle(folder / "train")
    assert a.labels.tolist() == d[b"fine_labels"] and a.num_classes == 100
    assert a.classes[99] == "class99" and a.source == str(folder)


def test_bad_num_classes(tmp_path):
    with pytest.raises(ValueError, match=r"\[10, 100\]"):
        load_cifar(tmp_path, 20, train=True)


@pytest.mark.parametrize(
    "num_classes, folder, archive",
    [
        (10, "cifar-10-batches-py", "cifar-10-python.tar.gz"),
        (100, "cifar-100-python", "cifar-100-python.tar.gz"),
    ],
)
def test_missing_folder_without_download_gives_guidance(tmp_path, no_network, num_classes, folder, archive):
    with pytest.raises(DataError) as e:
        load_cifar(tmp_path, num_classes, train=True)
    msg = str(e.value)
    assert str(tmp_path / folder) in msg
    assert f"https://www.cs.toronto.edu/~kriz/{archive}" in msg and "data.download=true" in msg
    assert no_network == []


def test_download_failure_is_clear(tmp_path, no_network):
    root = tmp_path / "data"
    with pytest.raises(DataError) as e:
        load_cifar(root, 10, train=True, download=True)
    msg = str(e.value)
    assert "download" in msg and "failed" in msg and "network unreachable" in msg
    assert str(root / "cifar-10-batches-py") in msg and URL10 in msg
    assert no_network == [URL10]
    assert not root.exists()  # the folder made for the download is gone with it
    root.mkdir()  # a folder of the user's stays
    with pytest.raises(DataError):
        load_cifar(root, 10, train=True, download=True)
    assert list(root.iterdir()) == []  # no partial download left behind


def _fake_archive(tmp_path, num_classes=10, extra=None):
    src = tmp_path / "src"
    folder = write_fake_cifar(src, num_classes)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
        if extra is not None:
            info = tarfile.TarInfo(extra)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    data = buf.getvalue()
    return data, hashlib.md5(data).hexdigest()


def test_download_success_with_fake_archive(tmp_path, monkeypatch):
    data, md5 = _fake_archive(tmp_path)
    monkeypatch.setitem(cifar_mod.CIFAR_ARCHIVES, 10, replace(cifar_mod.CIFAR_ARCHIVES[10], md5=md5))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(data))
    root = tmp_path / "root"
    a = load_cifar(root, 10, train=True, download=True)
    assert len(a) == 20 and (root / "cifar-10-batches-py" / "test_batch").is_file()
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


def test_archive_already_in_root_is_used_offline(tmp_path, monkeypatch, no_network):
    data, md5 = _fake_archive(tmp_path)
    monkeypatch.setitem(cifar_mod.CIFAR_ARCHIVES, 10, replace(cifar_mod.CIFAR_ARCHIVES[10], md5=md5))
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(data)
    assert len(load_cifar(root, 10, train=False, download=True)) == 4
    assert no_network == []


def test_md5_mismatch(tmp_path, monkeypatch):
    data, _ = _fake_archive(tmp_path)
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(data))
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz: md5 .* does not match"):
        load_cifar(tmp_path / "root", 10, train=True, download=True)
    assert not (tmp_path / "root").exists()  # bad download removed with the folder made for it, nothing extracted


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt"])
def test_unsafe_archive_rejected(tmp_path, monkeypatch, member):
    data, md5 = _fake_archive(tmp_path, extra=member)
    monkeypatch.setitem(cifar_mod.CIFAR_ARCHIVES, 10, replace(cifar_mod.CIFAR_ARCHIVES[10], md5=md5))
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(data)
    with pytest.raises(DataError, match="unsafe path"):
        load_cifar(root, 10, train=True, download=True)
    assert not (tmp_path / "evil.txt").exists()
    assert not (root / "cifar-10-batches-py").exists()


def test_missing_batch_file(tmp_path):
    folder = write_fake_cifar(tmp_path, 10)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"data_batch_3: file not found"):
        load_cifar(tmp_path, 10, train=True)


def test_corrupt_batch_file(tmp_path):
    folder = write_fake_cifar(tmp_path, 10)
    (folder / "test_batch").write_bytes((folder / "test_batch").read_bytes()[:100])
    with pytest.raises(DataError, match=r"test_batch: cannot unpickle"):
        load_cifar(tmp_path, 10, train=False)


def test_batch_missing_key_and_bad_labels(tmp_path):
    folder = write_fake_cifar(tmp_path, 10)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]}, f)
    with pytest.raises(DataError, match=r"test_batch: missing key 'labels'; found keys \['data', 'fine_labels'\]"):
        load_cifar(tmp_path, 10, train=False)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, f)
    with pytest.raises(DataError, match=r"test_batch: labels must be in \[0, 10\), found 10 at index 1"):
        load_cifar(tmp_path, 10, train=False)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DataError, match=r"test_batch: 'data' must be uint8 \(n, 3072\)"):
        load_cifar(tmp_path, 10, train=False)


def test_meta_missing_names(tmp_path):
    folder = write_fake_cifar(tmp_path, 100)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"coarse_label_names": []}, f)
    with pytest.raises(DataError, match=r"meta: missing key 'fine_label_names'"):
        load_cifar(tmp_path, 100, train=False)
