"""ait.sweep.plan and .files: grid expansion, unique readable run directories, the committed sweep files."""

import re
from pathlib import Path

import pytest
from sweep_testutils import write_config

from ait.config import ConfigError
from ait.sweep import SweepError, canonical_value, parse_grid, plan_sweep, split_values

ROOT = Path(__file__).resolve().parents[2]


def test_split_and_canonical_values():
    assert split_values("0,0.5,[rp, rg],x") == ["0", "0.5", "[rp, rg]", "x"]
    assert canonical_value("2.0") == "2" and canonical_value("[rp, rg]") == "rp,rg"
    assert parse_grid(["a.b=1,2", "c=[x,y],[z]"]) == {"a.b": ["1", "2"], "c": ["[x,y]", "[z]"]}
    assert parse_grid({"consistency.weight": [0.5, 1]}) == {"consistency.weight": ["0.5", "1"]}
    with pytest.raises(SweepError, match="--seeds"):
        parse_grid(["seed=1,2"])
    with pytest.raises(SweepError, match="twice"):
        parse_grid(["a=1", "a=2"])


def test_grid_is_the_cartesian_product_with_unique_readable_names(tmp_path):
    path = write_config(tmp_path)
    plan = plan_sweep([path], seeds=[0, 1], grid=["consistency.weight=0,0.5,2", "data.label_noise=0,0.2"])
    assert len(plan) == 3 * 2 * 2
    points = {(p.config.consistency.weight, p.config.data.label_noise, p.seed) for p in plan}
    assert len(points) == 12
    assert len({p.run_dir for p in plan}) == 12
    p = next(p for p in plan if p.config.consistency.weight == 2 and p.config.data.label_noise == 0.2 and p.seed == 1)
    assert p.name == "tiny_ait_consistency.weight=2_data.label_noise=0.2"
    assert p.run_dir == tmp_path / "runs" / p.name / "seed1"
    assert all(p.status == "todo" for p in plan)
    # Without a grid the names are the configs' own and each config keeps its seed.
    plain = plan_sweep([path])
    assert [(p.name, p.seed) for p in plain] == [("tiny_ait", 0)]


def test_bad_grid_value_names_the_key(tmp_path):
    path = write_config(tmp_path)
    with pytest.raises(ConfigError, match="consistency.weight"):
        plan_sweep([path], grid=["consistency.weight=1,-2"])
    with pytest.raises(ConfigError, match="did you mean"):
        plan_sweep([path], grid=["consistency.wieght=1,2"])


def test_colliding_runs_are_refused_and_duplicates_merged(tmp_path):
    b = write_config(tmp_path, "baseline", name="same").rename(tmp_path / "other.yaml")
    a = write_config(tmp_path, name="same")
    with pytest.raises(SweepError, match="share"):
        plan_sweep([a, b])
    # The same run asked for twice ("2" and "2.0", or one file twice) is planned once.
    assert len(plan_sweep([a, a], grid=["consistency.weight=2,2.0"])) == 1


@pytest.mark.parametrize("path", sorted((ROOT / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_each_committed_sweep_file_plans_without_collisions(path, monkeypatch):
    from ait.sweep import plan_experiments, read_sweep_file

    monkeypatch.chdir(ROOT)  # the files name configs relative to the repository root
    experiments, overrides = read_sweep_file(path)
    plan = plan_experiments(experiments, overrides)
    assert plan and len({p.run_dir for p in plan}) == len(plan)
    counted = re.search(r"^# (\d+) runs", path.read_text(), flags=re.M)  # a header that counts them is right
    assert counted is None or int(counted[1]) == len(plan)
