import numpy as np
import pytest
import torch
from data_testutils import write_npz

from ait.data import DataError, ImageArrays, load_npz


def _rand(n=6, h=5, w=4, c=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % k
    return images, labels


def test_npz_round_trip_nhwc_to_nchw(tmp_path):
    images, labels = _rand()
    p = write_npz(tmp_path / "train.npz", images, labels)
    a = load_npz(p)
    assert a.images.dtype == torch.uint8 and a.images.shape == (6, 3, 5, 4)
    assert a.images.is_contiguous()
    assert torch.equal(a.images, torch.from_numpy(images).permute(0, 3, 1, 2))
    assert a.labels.dtype == torch.int64 and a.labels.tolist() == labels.tolist()
    assert a.classes == ["0", "1", "2"] and a.num_classes == 3 and len(a) == 6
    assert a.source == str(p) and a.name == "train"


def test_npz_grayscale_and_int32_labels(tmp_path):
    images, labels = _rand(c=1)
    p = write_npz(tmp_path / "g.npz", images[..., 0], labels.astype(np.int32))
    a = load_npz(p)
    assert a.images.shape == (6, 1, 5, 4) and a.labels.dtype == torch.int64
    assert torch.equal(a.images[:, 0], torch.from_numpy(images[..., 0]))


def test_npz_class_names_from_arg_and_classes_txt(tmp_path):
    images, labels = _rand()
    p = write_npz(tmp_path / "d.npz", images, labels)
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n\n")
    assert load_npz(p).classes == ["cat", "dog", "bird"]
    assert load_npz(p, classes=["a", "b", "c", "d"]).classes == ["a", "b", "c", "d"]


def test_npz_label_out_of_range_names_file_value_and_index(tmp_path):
    images, labels = _rand()
    labels[4] = 12
    p = write_npz(tmp_path / "train.npz", images, labels)
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    with pytest.raises(DataError, match=r"train\.npz: labels must be in \[0, 3\), found 12 at index 4"):
        load_npz(p)


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.npz: file not found"):
        load_npz(tmp_path / "nope.npz")


def test_npz_folder_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="folder"):
        load_npz(tmp_path)


@pytest.mark.parametrize("content", [b"", b"this is not a zip file at all" * 10])
def test_npz_not_a_zip(tmp_path, content):
    p = tmp_path / "bad.npz"
    p.write_bytes(content)
    with pytest.raises(DataError, match=r"bad\.npz: not an \.npz archive \(no zip file") as err:
        load_npz(p)
    assert "pickle" not in str(err.value)  # numpy's guess for any bytes it does not know


def test_npz_truncated(tmp_path):
    images, labels = _rand(n=50, h=16, w=16)
    good = write_npz(tmp_path / "good.npz", images, labels)
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 30):
        p = tmp_path / f"cut{cut}.npz"
        p.write_bytes(data[:cut])
        with pytest.raises(DataError, match=rf"cut{cut}\.npz"):
            load_npz(p)


def test_npz_single_npy_array(tmp_path):
    p = tmp_path / "arr.npy"
    np.save(p, np.zeros(3))
    with pytest.raises(DataError, match=r"arr\.npy: not an \.npz"):
        load_npz(p)


def test_npz_missing_keys_lists_found(tmp_path):
    images, labels = _rand()
    p = tmp_path / "k.npz"
    np.savez(p, x=images, y=labels)
    with pytest.raises(DataError, match=r"k\.npz: missing key.*'images'.*found keys \['x', 'y'\]"):
        load_npz(p)


def test_npz_float_images_rejected(tmp_path):
    images, labels = _rand()
    p = write_npz(tmp_path / "f.npz", images.astype(np.float32) / 255, labels)
    with pytest.raises(DataError, match=r"f\.npz: images must be uint8.*float32"):
        load_npz(p)


@pytest.mark.parametrize(
    "images, labels, pattern",
    [
        (np.zeros((4, 8), np.uint8), np.zeros(4, np.int64), r"shape \(N, H, W, C\)"),
        (np.zeros((4, 3, 32, 32), np.uint8), np.zeros(4, np.int64), "channels-first"),
        (np.zeros((4, 8, 8, 3), np.uint8), np.zeros(5, np.int64), "4 images but 5 labels"),
        (np.zeros((4, 8, 8, 3), np.uint8), np.zeros((4, 1), np.int64), r"labels must have shape \(N,\)"),
        (np.zeros((4, 8, 8, 3), np.uint8), np.zeros(4, np.float32), "labels must be integers"),
        (np.zeros((0, 8, 8, 3), np.uint8), np.zeros(0, np.int64), "empty"),
    ],
)
def test_npz_bad_shapes(tmp_path, images, labels, pattern):
    p = write_npz(tmp_path / "s.npz", images, labels)
    with pytest.raises(DataError, match=r"s\.npz: .*" + pattern):
        load_npz(p)


def _arrays(n=5, k=3):
    return ImageArrays(
        torch.zeros(n, 3, 4, 4, dtype=torch.uint8),
        torch.arange(n) % k,
        [str(i) for i in range(k)],
        name="t",
        source="mem.npz",
    )


@pytest.mark.parametrize(
    "images, labels, pattern",
    [
        (torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.int64), "uint8"),
        (torch.zeros(2, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), r"\(N, C, H, W\)"),
        (
            torch.zeros(2, 4, 4, 3, dtype=torch.uint8).permute(0, 3, 1, 2),
            torch.zeros(2, dtype=torch.int64),
            "contiguous",
        ),
        (torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.int32), "int64"),
        (torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64), "2 images but 3 labels"),
        (torch.zeros(0, 3, 4, 4, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64), "empty"),
        (torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, -1]), r"\[0, 2\), found -1 at index 1"),
    ],
)
def test_validate_errors(images, labels, pattern):
    with pytest.raises(DataError, match=r"^mem\.npz: .*" + pattern):
        ImageArrays(images, labels, ["a", "b"], name="t", source="mem.npz")


def test_validate_after_mutation():
    a = _arrays()
    a.labels[2] = 7
    with pytest.raises(DataError, match="found 7 at index 2"):
        a.validate()


def test_subset_and_to():
    a = _arrays(n=6)
    a.images[:, 0, 0, 0] = torch.arange(6, dtype=torch.uint8)
    s = a.subset(torch.tensor([4, 1]))
    assert len(s) == 2 and s.images[:, 0, 0, 0].tolist() == [4, 1]
    assert s.labels.tolist() == [1, 1] and s.classes == a.classes and s.source == a.source
    assert a.subset([0, 5]).images[:, 0, 0, 0].tolist() == [0, 5]
    mask = torch.tensor([True, False, True, False, False, False])
    assert a.subset(mask).images[:, 0, 0, 0].tolist() == [0, 2]
    with pytest.raises(ValueError):
        a.subset([])
    with pytest.raises(IndexError):
        a.subset([6])
    assert a.to("cpu") is a


def test_real_cifar10_test_npz(shared_data):
    path = shared_data / "cifar10" / "test.npz"
    a = load_npz(path)
    names = (shared_data / "cifar10" / "classes.txt").read_text().split("\n")
    assert len(a) == 10000 and a.images.shape == (10000, 3, 32, 32)
    assert a.num_classes == 10 and a.classes == [n for n in names if n]
    assert a.classes[0] == "airplane" and a.classes[9] == "truck"
    assert torch.bincount(a.labels).tolist() == [1000] * 10


def test_real_cifar100_train_npz(shared_data):
    a = load_npz(shared_data / "cifar100" / "train-20000.npz")
    assert len(a) == 20000 and a.num_classes == 100
    assert torch.bincount(a.labels, minlength=100).tolist() == [200] * 100
