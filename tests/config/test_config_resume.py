"""What a resumed run may change: differences between configs, and the fingerprint."""

import pytest
import yaml

from ait.config import RESUME_MAY_CHANGE, Config, config_differences, config_fingerprint, flatten, load_config


def test_config_differences_fill_defaults_and_list_changed_keys():
    current = load_config(overrides=["consistency.weight=3"]).to_dict()
    older = load_config().to_dict()
    del older["train"]["sync_batchnorm"]  # saved before the key existed: its default applies
    assert config_differences(older, current) == ["consistency.weight: 1.0 -> 3.0"]
    assert config_differences(older, current, ignore=("consistency.weight",)) == []


def test_every_key_a_resumed_run_may_change_is_a_key_of_the_schema():
    # A renamed key left here would silently stop being allowed to change (and still be fingerprinted).
    assert set(RESUME_MAY_CHANGE) <= set(flatten(Config().to_dict()))


# A value for each key a resumed run may change, other than its default.
CHANGED = {
    "out_dir": "elsewhere",
    "data.workers": 2,
    "train.progress": "none",
    "train.num_threads": 3,
    "train.cuda_graphs": True,
    "train.eval_batch_size": 100,
    "train.checkpoint_every_steps": 50,
    "train.max_nonfinite_skips": 4,
    "train.dist_timeout_s": 60.0,
    "train.loggers": ["csv"],
    "train.log_every": 10,
}


def test_changed_keys_cover_every_key_a_resumed_run_may_change():
    assert set(CHANGED) == set(RESUME_MAY_CHANGE)


@pytest.mark.parametrize("key", RESUME_MAY_CHANGE)
def test_the_fingerprint_ignores_what_a_resumed_run_may_change(key):
    changed = load_config(overrides=[f"{key}={yaml.safe_dump(CHANGED[key], default_flow_style=True).strip()}"])
    assert flatten(changed.to_dict())[key] != flatten(Config().to_dict())[key]
    assert config_fingerprint(changed) == config_fingerprint(load_config())


@pytest.mark.parametrize("override", ["optim.lr=0.05", "seed=1", "consistency.weight=3", "strategy.views=[rp, rg]"])
def test_the_fingerprint_changes_with_what_a_run_computes(override):
    assert config_fingerprint(load_config(overrides=[override])) != config_fingerprint(load_config())
