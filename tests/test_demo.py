"""`ait demo` on a tiny folder of .npz arrays: three runs, one comparison table."""

import numpy as np

from ait.data.synthetic import make_synthetic_split
from ait.demo import demo_data_config, run_demo


def write_npz_folder(folder):
    train, test = make_synthetic_split(256, 40, seed=3)
    for name, arrays in (("train-small.npz", train), ("test.npz", test)):
        np.savez(folder / name, images=arrays.images.permute(0, 2, 3, 1).numpy(), labels=arrays.labels.numpy())


def test_demo_compares_baseline_compute_fair_baseline_and_ait(tmp_path, capsys):
    write_npz_folder(tmp_path)
    rows = run_demo(data=str(tmp_path), epochs=1, train_limit=256, out_dir=str(tmp_path / "runs"))
    out = capsys.readouterr().out
    assert [r["run"] for r in rows] == ["baseline (rp)", "baseline (rp), same steps as AIT", "AIT (rp,rp, lambda=1)"]
    assert rows[1]["steps"] == rows[2]["steps"] == 2 * rows[0]["steps"]
    for r in rows:
        assert 0 <= r["test_top1"] <= 100 and 0 <= r["shifted_top1"] <= 100 and r["kl_under_shift"] >= 0
        assert r["run_dir"] in out
    assert out.count("\n| ") == 4  # header and three rows


def test_demo_data_defaults_to_fashion_mnist_and_rejects_unknown_folders(tmp_path):
    assert demo_data_config(None, 100)["dataset"] == "fashion_mnist"
    import pytest

    from ait.data import DataError

    with pytest.raises(DataError, match=str(tmp_path)):
        demo_data_config(str(tmp_path), 100)
