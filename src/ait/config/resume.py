"""What a resumed run may change, and what it must not: the keys that do not change what is
computed, the differences between two configs, and a config's fingerprint."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ait.config.errors import ConfigError
from ait.config.loading import config_from_dict, deep_copy
from ait.config.paths import resolve_data_paths
from ait.config.schema import Config

# Keys that may change when a run is resumed: they do not change what is computed.
RESUME_MAY_CHANGE = (
    "out_dir",
    "data.workers",
    "train.progress",
    "train.num_threads",
    "train.cuda_graphs",  # the same step, captured and replayed (ait.engine.graphs)
    "train.eval_batch_size",
    "train.checkpoint_every_steps",
    "train.max_nonfinite_skips",
    "train.dist_timeout_s",
    "train.loggers",
    "train.log_every",
)


def config_differences(a: dict[str, Any], b: dict[str, Any], ignore: tuple = ()) -> list[str]:
    """Dotted keys whose values differ between two plain config dicts, as "key: a -> b".

    Both sides are first resolved (defaults filled in), so a config saved before a key was added to
    the schema still matches a current config that leaves that key at its default.
    """
    a, b = _resolved_or_raw(a), _resolved_or_raw(b)
    out: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y)):
                walk(x.get(key), y.get(key), f"{prefix}.{key}" if prefix else key)
        elif x != y and prefix not in ignore:
            out.append(f"{prefix}: {x!r} -> {y!r}")

    walk(a, b, "")
    return out


def config_fingerprint(config: Config) -> str:
    """A short hex digest of what the config computes: the resolved config without the keys a
    resumed run may change (RESUME_MAY_CHANGE). Recorded in env.json and every checkpoint."""
    data = config.to_dict()
    for dotted in RESUME_MAY_CHANGE:
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node.pop(last, None)
    return hashlib.blake2b(json.dumps(data, sort_keys=True).encode(), digest_size=16).hexdigest()


def _resolved_or_raw(data: dict[str, Any]) -> dict[str, Any]:
    try:
        return resolve_data_paths(config_from_dict(deep_copy(data))).to_dict()
    except ConfigError:  # not valid under the current schema: compare what was written
        return data
