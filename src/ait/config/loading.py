"""Plain data into a Config, strictly: YAML files, dotted ``--set`` overrides, each value coerced to
its key's type and checked against its range; and a Config back into plain data."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from ait.config.errors import ConfigError, InvalidYAMLError
from ait.config.schema import Config, Range


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``, converting where it is lossless."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(key, value, args)
    if tp is Any:
        return _plain(key, value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_string_key(key, k): _coerce(f"{key}.{k}", v, args[1]) for k, v in value.items()}
    if origin is list:
        if isinstance(value, str):  # "rp,rg" is the paper's way of writing a list of views
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, key)
    return _coerce_scalar(key, value, tp)


def _coerce_union(key: str, value: Any, args: tuple) -> Any:
    """``value`` as the first member of the union that takes it; else the first member's error."""
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _coerce(key, value, arg)
        except ConfigError as err:
            errors.append(err)
    raise errors[0]


def _coerce_scalar(key: str, value: Any, tp: Any) -> Any:
    """``value`` as a bool, int, float or str; a number written as text counts (see :func:`_number`)."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        number = _number(value)
        if isinstance(number, int):
            return number
        if isinstance(number, float) and number.is_integer():
            return int(number)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        number = _number(value)
        if number is not None:
            return float(number)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            # YAML 1.1 reads unquoted on/off/yes/no as booleans; say so, since the user typed a word.
            raise ConfigError(
                f"{key}: expected a string, got {value!r} (YAML reads unquoted on/off/yes/no as "
                f"true/false; quote the word, e.g. {key}: 'off')"
            )
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _string_key(key: str, name: Any) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"{key}: keys must be strings, got {name!r}")
    return name


def _plain(key: str, value: Any) -> Any:
    """``value`` when it is plain data (numbers, strings, booleans, null, lists and mappings of
    them), which a config can be saved as; ConfigError otherwise (YAML's dates, for one)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(f"{key}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {_string_key(key, k): _plain(f"{key}.{k}", v) for k, v in value.items()}
    raise ConfigError(f"{key}: expected plain data (numbers, strings, lists, mappings), got {value!r}")


def _number(value: Any) -> int | float | None:
    """``value`` as a Python number, or None. Strings count: YAML 1.1 reads 1e-3 and 5e-4 (no dot)
    as text, and a user who writes them means numbers; so do "1_000", ".5" and "+2"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                continue
    return None


def _unknown_key(prefix: str, key: str, valid: list[str], override: str | None = None) -> ConfigError:
    """The error for ``prefix.key``, with the closest valid key and all of them; ``override``: the
    --set text it came from (the file is not where it was written)."""
    where = f"{prefix}.{key}" if prefix else key
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    said = f"override {override!r}: " if override else ""
    return ConfigError(f"{said}unknown config key {where!r}{hint}; valid keys here: {', '.join(valid)}")


def _from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key(prefix, str(key), list(fields))
        dotted = f"{prefix}.{key}" if prefix else key
        kwargs[key] = _coerce(dotted, value, hints[key])
        if "range" in fields[key].metadata:
            _check_range(dotted, kwargs[key], fields[key].metadata["range"], hints[key])
    return cls(**kwargs)


def _check_range(key: str, value: Any, valid: Range, tp: Any) -> None:
    """``value`` (each element of a list; None passes) within ``valid``, else ConfigError naming ``key``."""
    integer = tp is int or int in typing.get_args(tp)
    for i, v in enumerate(value) if isinstance(value, list) else [(None, value)]:
        if v is not None and not valid.holds(v):
            where = key if i is None else f"{key}[{i}]"
            optional = type(None) in typing.get_args(tp)
            raise ConfigError(f"{where}: expected {'null or ' if optional else ''}{valid.describe(integer)}, got {v!r}")


def config_from_dict(data: dict[str, Any]) -> Config:
    """A validated Config from plain data (as read from YAML); unknown keys are errors."""
    return _from_dict(Config, data).validate()


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply ``"a.b.c=value"`` in place; the value is parsed as YAML ("3" -> 3, "[1, 2]" -> list)."""
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. consistency.weight=3")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    cls: Any = Config
    node = data
    for depth, part in enumerate(parts):
        if typing.get_origin(cls) is dict or cls is Any:  # a mapping's own key (a model name, a kwarg)
            hints = {part: typing.get_args(cls)[1] if cls is not Any else Any}
        else:
            hints = typing.get_type_hints(cls)
        if part not in hints:
            raise _unknown_key(".".join(parts[:depth]), part, list(hints), override)
        if depth == len(parts) - 1:
            node[part] = parse_yaml(raw, key.strip(), override=True) if raw.strip() else ""
        else:
            cls = hints[part]
            if not (dataclasses.is_dataclass(cls) or typing.get_origin(cls) is dict or cls is Any):
                raise ConfigError(f"override {override!r}: {'.'.join(parts[: depth + 1])} has no sub-keys")
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {override!r}: {'.'.join(parts[: depth + 1])} is not a mapping")


def add_override_option(parser, help_text: str = "override a config value, e.g. --set consistency.weight=3") -> None:
    """The ``--set KEY=VALUE`` option (repeatable, into ``args.overrides``) of every command taking overrides."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=f"{help_text} (repeatable)"
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loading that refuses a key given twice in one mapping, where PyYAML keeps the last value
    and silently drops one the user wrote."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        first: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
            if key_node.tag == "tag:yaml.org,2002:merge":  # keys after `<<: *base` override base's on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the base class refuses it in its own words
                continue
            if seen is not key_node.start_mark:
                first_line = f"first on line {seen.line + 1}"
                raise yaml.MarkedYAMLError(first_line, None, f"key {key!r} given twice", key_node.start_mark)
        return super().construct_mapping(node, deep)


def parse_yaml(text: str, source: str | Path, *, override: bool = False) -> Any:
    """The data of YAML ``text``, safely loaded; InvalidYAMLError in one line otherwise (a key given
    twice too): ``SOURCE:LINE:COL: problem`` for a file, ``--set KEY: not valid YAML: problem`` for an
    override's value (``source``: its KEY)."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark, problem = _yaml_problem(err, text, placed=not override)
    except RecursionError:  # PyYAML composes nested collections recursively
        mark, problem = None, "nested too deeply to read"
    if override:
        raise InvalidYAMLError(f"--set {source}: not valid YAML: {problem}")
    place = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
    raise InvalidYAMLError(f"{source}{place}: {problem}")


def _yaml_problem(err: yaml.YAMLError, text: str, placed: bool) -> tuple[yaml.Mark | None, str]:
    """Where PyYAML's error is and its problem in one line (its own text spans several lines and
    places the problem in "<unicode string>", not the file); ``placed``: the context's line too."""
    if isinstance(err, yaml.reader.ReaderError):  # a control character, placed by its offset alone
        before = text[: err.position]
        mark = yaml.Mark("", err.position, before.count("\n"), err.position - before.rfind("\n") - 1, None, None)
        return mark, f"unacceptable character #x{err.character:04x}: {err.reason}"
    if not isinstance(err, yaml.MarkedYAMLError):  # pragma: no cover - PyYAML raises only the two above
        return None, _one_line(str(err))
    context = err.context if err.problem else None  # e.g. "while parsing a flow mapping"
    if context and placed and err.context_mark:
        context += f" at line {err.context_mark.line + 1}, column {err.context_mark.column + 1}"
    problem = _one_line(err.problem or err.context or "not valid YAML")
    return err.problem_mark or err.context_mark, problem + (f" ({_one_line(context)})" if context else "")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML config file; ConfigError naming the file for anything else."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; expected a YAML config file (e.g. configs/smoke/*.yaml)")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (UTF-8); expected a YAML config file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    data = parse_yaml(text, path)
    if data is None:
        raise ConfigError(
            f"{path}: holds no config keys (empty, or comments only); a config names at least its data, "
            "e.g. configs/smoke/synthetic_resnet20_ait.yaml"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def load_config(source: str | Path | dict | Config | None = None, overrides: list[str] | tuple = ()) -> Config:
    """A validated Config from a YAML path, a dict, a Config or None (defaults), plus overrides."""
    if isinstance(source, Config):
        data = source.to_dict()
    elif isinstance(source, dict):
        data = dict(source)
    elif source is None:
        data = {}
    else:
        data = read_yaml(source)
    data = deep_copy(data)
    for override in overrides:
        apply_override(data, override)
    try:
        return config_from_dict(data)
    except ConfigError as err:
        if isinstance(source, (str, Path)):
            err.args = (f"{source}: {err}",)  # the same error (an UnknownModelError stays one), placed
            raise err.with_traceback(None) from None
        raise


def deep_copy(data: Any) -> Any:
    """Plain data (mappings and lists of them) copied, so that overrides leave the caller's alone."""
    if isinstance(data, dict):
        return {k: deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [deep_copy(v) for v in data]
    return data


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested plain data (a config as a dict) as {"optim.lr": 0.1, "models.timm:x.kwargs.img_size": 32, ...}:
    every mapping opened, every other value (lists too) left as it is."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def dump_yaml(config: Config) -> str:
    """The config as YAML, keys in the schema's order: what a run saves as config.yaml."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
