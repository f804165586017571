"""Every numeric key has a range, and every value outside it is refused at load time, key named."""

import contextlib
import dataclasses
import io
import math
import typing
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ait.cli import main
from ait.config import (
    Config,
    Range,
)


def numeric_keys() -> list[tuple[str, Any, Range | None]]:
    """(dotted key, annotation, declared Range) of every int / float / list-of-int key of the schema."""
    out = []

    def walk(cls, prefix):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp, key = hints[f.name], f"{prefix}{f.name}"
            if dataclasses.is_dataclass(tp):
                walk(tp, f"{key}.")
            elif {int, float} & ({tp} | set(typing.get_args(tp))):
                out.append((key, tp, f.metadata.get("range")))

    walk(Config, "")
    return out


def is_integer(tp) -> bool:
    return tp is int or int in typing.get_args(tp)


def outside(valid: Range, integer: bool) -> st.SearchStrategy:
    """Values a key with range ``valid`` must refuse."""
    options = []
    if valid.lo is not None:
        lo = valid.lo if valid.lo_open else valid.lo - (1 if integer else 1e-9 * max(1.0, abs(valid.lo)))
        options.append(st.integers(max_value=math.floor(lo)) if integer else st.floats(max_value=lo, allow_nan=False))
    if valid.hi is not None:
        hi = valid.hi if valid.hi_open else valid.hi + (1 if integer else 1e-9 * max(1.0, abs(valid.hi)))
        options.append(st.integers(min_value=math.ceil(hi)) if integer else st.floats(min_value=hi, allow_nan=False))
    options.append(st.sampled_from([math.nan, math.inf, -math.inf]))
    return st.one_of(options)


KEYS = numeric_keys()


def test_every_numeric_key_declares_a_range_that_holds_its_default():
    missing = [key for key, _, valid in KEYS if valid is None]
    assert not missing, f"numeric config keys without a range: {missing}"
    defaults = Config()
    for key, _, valid in KEYS:
        value = defaults
        for part in key.split("."):
            value = getattr(value, part)
        for v in value if isinstance(value, list) else [value]:
            assert v is None or valid.holds(v), (key, v)


@pytest.mark.parametrize("key, tp, valid", KEYS, ids=[k for k, _, _ in KEYS])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_out_of_range_values_are_refused_with_the_key_before_training(key, tp, valid, data, tmp_path_factory):
    value = data.draw(outside(valid, is_integer(tp)), label=key)
    text = f"[{value!r}]" if typing.get_origin(tp) is list else repr(value)
    tmp = tmp_path_factory.mktemp("cfg")
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": "synthetic"}, "out_dir": str(tmp / "runs")}))
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        assert main(["train", str(path), "--set", f"{key}={text}"]) == 2
    err = stderr.getvalue()
    assert key in err and "Traceback" not in err, err
    assert not (tmp / "runs").exists()
