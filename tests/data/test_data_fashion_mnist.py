import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from data_testutils import idx_bytes, write_fake_fashion, write_idx

from ait.data import NORMALIZATION, DataError, channel_stats, load_fashion_mnist, read_idx
from ait.data.fashion_mnist import DEFAULT_ROOT, FASHION_MNIST_CLASSES


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([[-5, 70000], [3, 2**30]], dtype=np.int32),
        np.linspace(-1, 1, 7).astype(np.float32),
        np.array([-3, 4], dtype=np.int16),
    ],
)
def test_read_idx_round_trip(tmp_path, arr, suffix):
    p = write_idx(tmp_path / f"a-idx{suffix}", arr)
    out = read_idx(p)
    assert out.dtype == arr.dtype.newbyteorder("=") and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    out[...] = 0  # writable


def test_load_fake_fashion_mnist_gz_and_plain(tmp_path):
    for gz, root in ((True, tmp_path / "gz"), (False, tmp_path / "plain")):
        write_fake_fashion(root, n_train=12, n_test=5, gz=gz)
        train = load_fashion_mnist(root, train=True)
        test = load_fashion_mnist(str(root), train=False)
        assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == torch.uint8
        assert test.images.shape == (5, 1, 28, 28) and test.labels.dtype == torch.int64
        assert train.classes == FASHION_MNIST_CLASSES and train.classes[0] == "T-shirt/top"
        ext = ".gz" if gz else ""
        raw = read_idx(root / f"train-images-idx3-ubyte{ext}")
        assert torch.equal(train.images[:, 0], torch.from_numpy(raw))
        assert train.source == str(root / f"train-images-idx3-ubyte{ext}")


def test_missing_root_says_how_to_install(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist") as e:
        load_fashion_mnist(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(e.value)


def test_missing_file_in_root(tmp_path):
    write_fake_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: file not found"):
        load_fashion_mnist(tmp_path, train=False)


def test_bad_magic(tmp_path):
    p = tmp_path / "x-idx"
    p.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match=r"x-idx: not an IDX file \(bad magic number 0x12340801\)"):
        read_idx(p)
    p.write_bytes(b"\x00\x00\x07\x01" + b"\x00" * 8)  # unknown type code
    with pytest.raises(DataError, match="bad magic"):
        read_idx(p)


@pytest.mark.parametrize("cut", [2, 6, 16, -1])
def test_truncated_idx(tmp_path, cut):
    data = idx_bytes(np.zeros((3, 4, 4), np.uint8))
    p = tmp_path / "t-idx3-ubyte"
    p.write_bytes(data[:cut])
    with pytest.raises(DataError, match=r"t-idx3-ubyte: truncated"):
        read_idx(p)


def test_trailing_bytes(tmp_path):
    p = tmp_path / "t-idx"
    p.write_bytes(idx_bytes(np.zeros(3, np.uint8)) + b"xx")
    with pytest.raises(DataError, match="2 unexpected bytes"):
        read_idx(p)


def test_truncated_gzip(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(p, "wb") as f:
        f.write(idx_bytes(np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: cannot read"):
        read_idx(p)
    p.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: cannot read"):
        read_idx(p)


def test_wrong_kind_of_file_and_count_mismatch(tmp_path):
    write_fake_fashion(tmp_path, n_train=12, gz=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    images = tmp_path / "train-images-idx3-ubyte"
    write_idx(labels, np.zeros(11, np.uint8))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: 12 images but train-labels-idx1-ubyte has 11"):
        load_fashion_mnist(tmp_path)
    write_idx(labels, np.full(12, 10, np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: labels must be in \[0, 10\), found 10"):
        load_fashion_mnist(tmp_path)
    write_idx(labels, np.zeros(12, np.uint8))
    write_idx(images, np.zeros((12, 28 * 28), np.uint8))  # 2-D: magic 0x00000802
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: expected uint8 images .*0x00000803"):
        load_fashion_mnist(tmp_path)
    write_idx(images, np.zeros((12, 28, 28), np.uint8))
    write_idx(labels, np.zeros(12, np.int32))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: expected uint8 labels"):
        load_fashion_mnist(tmp_path)


@pytest.fixture
def real_root():
    if not Path(DEFAULT_ROOT).is_dir():
        pytest.skip(f"{DEFAULT_ROOT} not present (apt-get install dataset-fashion-mnist)")
    return DEFAULT_ROOT


def test_real_fashion_mnist(real_root):
    train = load_fashion_mnist(train=True)
    test = load_fashion_mnist(real_root, train=False)
    assert train.images.shape == (60000, 1, 28, 28) and len(test) == 10000
    assert test.image_shape == (1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert train.images.dtype == torch.uint8 and int(train.images.max()) == 255
    mean, std = channel_stats(train.images)
    assert mean == pytest.approx(NORMALIZATION["fashion_mnist"][0], abs=0.001)
    assert std == pytest.approx(NORMALIZATION["fashion_mnist"][1], abs=0.001)
