"""Space files: what they accept, and errors that name the bad entry."""

from __future__ import annotations

import json

import pytest

from kerasjobs.errors import InputError
from kerasjobs.space import check_space_for_model, load_space_file, parse_space
from tests.conftest import run_kerasjobs

GOOD_YAML = """
units: {type: int, min: 32, max: 256, step: 32, default: 64}
learning_rate: {type: float, min: 1e-4, max: 1e-2, sampling: log}
dropout: {type: float, min: 0.0, max: 0.5, step: 0.1}
optimizer: {type: choice, values: [adam, sgd], default: adam}
rates: {type: choice, values: [1e-2, 1e-3]}
batch_norm: {type: boolean, default: true}
"""


def test_yaml_space_file_is_parsed_with_every_type(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(GOOD_YAML)
    specs = {spec.name: spec for spec in load_space_file(path)}

    assert specs["units"].kind == "int"
    assert specs["units"].options == {
        "min_value": 32,
        "max_value": 256,
        "step": 32,
        "default": 64,
        "sampling": "linear",
    }
    # YAML reads 1e-4 as a string; it comes back as a float.
    assert specs["learning_rate"].options["min_value"] == pytest.approx(1e-4)
    assert specs["learning_rate"].options["sampling"] == "log"
    assert specs["rates"].options["values"] == [1e-2, 1e-3]
    assert specs["optimizer"].options == {"values": ["adam", "sgd"], "default": "adam"}
    assert specs["batch_norm"].options == {"default": True}


def test_json_space_file_is_parsed(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"depth": {"type": "Int", "min": 1, "max": 3}}))
    (spec,) = load_space_file(path)
    assert (spec.name, spec.kind, spec.options["max_value"]) == ("depth", "int", 3)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "int", "min": 5, "max": 1}, r"'max' \(1\) must be greater"),
        ({"type": "int", "min": 1}, r"type int needs 'max'"),
        ({"type": "int", "min": 1.5, "max": 3}, r"'min' must be an integer"),
        ({"type": "float", "min": 0, "max": 1, "sampling": "log"}, r"'min' above 0"),
        ({"type": "float", "min": 0, "max": 1, "sampling": "cubic"}, r"'cubic'"),
        ({"type": "float", "min": 0, "max": 1, "step": 2}, r"'step' \(2\)"),
        ({"type": "float", "min": 0, "max": 1, "default": 3}, r"outside \[0, 1\]"),
        ({"type": "choice", "values": []}, r"non-empty list 'values'"),
        ({"type": "choice", "values": [1, "a"]}, r"must all be integers"),
        ({"type": "choice", "values": [1, 1]}, r"duplicates"),
        ({"type": "choice", "values": [1, 2], "default": 3}, r"not one of 'values'"),
        ({"type": "boolean", "default": "yes"}, r"true or false"),
        (
            {"type": "int", "min": 1, "max": 2, "stepp": 1},
            r"key 'stepp' is not allowed",
        ),
        ({"type": "decimal"}, r"type 'decimal' is unknown"),
        ({"min": 1}, r"expected a mapping with a 'type'"),
    ],
)
def test_bad_entry_is_named_with_what_is_wrong(entry, message):
    with pytest.raises(InputError, match=r"entry 'units': .*" + message):
        parse_space({"depth": {"type": "int", "min": 1, "max": 2}, "units": entry}, "s")


def test_a_file_that_is_not_a_mapping_is_rejected(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("- units\n- depth\n")
    with pytest.raises(InputError, match="expected a mapping of hyperparameter names"):
        load_space_file(path)


def test_a_bad_name_is_named():
    with pytest.raises(InputError, match=r"entry 'my units': the name must start"):
        parse_space({"my units": {"type": "boolean"}}, "s")


def test_builtin_model_rejects_names_it_does_not_read():
    specs = parse_space({"activation": {"type": "choice", "values": ["relu"]}}, "s")
    with pytest.raises(InputError, match="'activation' is not used by the built-in"):
        check_space_for_model(specs, None)
    check_space_for_model(specs, "package.module:function")


def test_cli_reports_a_bad_space_file_in_one_line_with_exit_2(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("units: {type: int, min: 64, max: 32}\n")
    result = run_kerasjobs("tune", "--root", str(tmp_path), "--space", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"kerasjobs: error: space file {str(path)!r}: entry 'units': 'max' (32) "
        "must be greater than 'min' (64)"
    ]
