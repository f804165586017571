"""What the sweep's tests share: a tiny config file, and a spy that stands in for training."""

import json

import yaml

from ait_testutils import tiny_config


def write_config(tmp_path, strategy="ait", name=None, **sections):
    cfg = tiny_config(tmp_path, strategy, **sections)
    cfg["data"]["synthetic_size"] = 64
    cfg["train"]["epochs"] = 1
    if name:
        cfg["name"] = name
    path = tmp_path / f"{cfg['name']}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Spy:
    """Stands in for ait.engine.run.train: records calls, writes a minimal finished run."""

    def __init__(self, fail_on=()):
        self.calls = []
        self.fail_on = set(fail_on)

    def __call__(self, config, run_dir, overwrite=False, resume=False):
        self.calls.append((config.name, config.seed, run_dir, overwrite, resume))
        if (config.name, config.seed) in self.fail_on:
            raise RuntimeError("boom")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
        summary = {"networks": [{"key": "net0", "final_top1": 50.0}]}
        (run_dir / "summary.json").write_text(json.dumps(summary))
        return summary
