"""YAML read strictly: a syntax error or a key given twice is one line naming the file, line and column
(or the --set key), never PyYAML's multi-line message placed in "<unicode string>"."""

import pytest
import yaml

from ait.cli import main
from ait.config import ConfigError, load_config
from ait.config.errors import InvalidYAMLError
from ait.config.loading import parse_yaml


def _one_line_error(capsys, argv: list[str]) -> str:
    """The stderr of ``ait ARGV``, which must end with status 2 and say one line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unicode string" not in err, err
    return err.strip()


def test_syntax_error_in_a_config_file_is_one_line_placed_in_the_file(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("name: run\nstrategy: {networks: [resnet20]\n")
    err = _one_line_error(capsys, ["config", str(path)])
    assert err == (
        f"ait config: error: {path}:3:1: expected ',' or '}}', but got '<stream end>' "
        "(while parsing a flow mapping at line 2, column 11)"
    )


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path, capsys):
    path = tmp_path / "twice.yaml"
    path.write_text("name: first\ntrain:\n  epochs: 1\nname: second\n")
    err = _one_line_error(capsys, ["config", str(path)])
    assert err == f"ait config: error: {path}:4:1: key 'name' given twice (first on line 1)"


def test_a_key_given_twice_in_a_nested_mapping_is_refused(tmp_path):
    path = tmp_path / "nested.yaml"
    path.write_text("optim:\n  lr: 0.1\n  momentum: 0.9\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"^.*nested\.yaml:4:3: key 'lr' given twice \(first on line 2\)$"):
        load_config(path)


def test_same_key_in_different_mappings_and_merge_overrides_are_fine():
    text = "base: &b {x: 1, y: 2}\nmine:\n  <<: *b\n  x: 5\nlist: [{x: 1}, {x: 2}]\n"
    assert parse_yaml(text, "f.yaml") == {
        "base": {"x": 1, "y": 2},
        "mine": {"x": 5, "y": 2},
        "list": [{"x": 1}, {"x": 2}],
    }


def test_bad_set_value_names_the_key_in_one_line(tmp_path, capsys):
    path = tmp_path / "ok.yaml"
    path.write_text("name: run\n")
    err = _one_line_error(capsys, ["config", str(path), "--set", "strategy.networks=[resnet20"])
    assert err == (
        "ait config: error: --set strategy.networks: not valid YAML: expected ',' or ']', "
        "but got '<stream end>' (while parsing a flow sequence)"
    )


def test_set_value_with_a_key_twice_is_refused():
    with pytest.raises(InvalidYAMLError, match=r"^--set models: not valid YAML: key 'a' given twice"):
        load_config(overrides=["models={a: 1, a: 2}"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: a\n  b: 1\n", r"f\.yaml:2:4: mapping values are not allowed here$"),
        ("name: 'open\n", r"f\.yaml:2:1: found unexpected end of stream \(while scanning a quoted scalar at line 1"),
        ("a: 1\nb: \x07\n", r"f\.yaml:2:4: unacceptable character #x0007: special characters are not allowed$"),
        ("a: !!python/object/apply:os.system [ls]\n", r"f\.yaml:1:4: could not determine a constructor for the tag"),
        ("[" * 5000, r"f\.yaml: nested too deeply to read$"),
    ],
)
def test_each_kind_of_bad_yaml_is_one_line(text, message):
    with pytest.raises(InvalidYAMLError, match=message) as err:
        parse_yaml(text, "f.yaml")
    assert "\n" not in str(err.value)


def test_the_error_is_a_config_error_and_a_yaml_error():
    """Exit status 2 through ConfigError; code that catches yaml.YAMLError still catches it."""
    with pytest.raises(ConfigError):
        parse_yaml("a: [", "f.yaml")
    with pytest.raises(yaml.YAMLError):
        parse_yaml("a: 1\na: 2\n", "f.yaml")


def test_sweep_file_and_run_config_read_the_same_way(tmp_path):
    from ait.report.records import load_run
    from ait.sweep.files import read_sweep_file

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("experiments:\n  - config: a.yaml\nexperiments: []\n")
    with pytest.raises(ConfigError, match=r"sweep\.yaml:3:1: key 'experiments' given twice \(first on line 1\)$"):
        read_sweep_file(sweep)
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text('{"networks": [{"key": "resnet20", "final_top1": 0.5}]}')
    (run / "config.yaml").write_text("name: [x\n")
    with pytest.raises(ValueError, match=r"config\.yaml:2:1: expected ',' or ']'") as err:
        load_run(run)
    assert "\n" not in str(err.value)
