"""Search spaces: parse a space file, and build the hypermodel a search tunes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kerasjobs.errors import InputError

TYPES = ("int", "float", "choice", "boolean")
SAMPLINGS = ("linear", "log", "reverse_log")
_KEYS = {
    "int": {"type", "min", "max", "step", "sampling", "default"},
    "float": {"type", "min", "max", "step", "sampling", "default"},
    "choice": {"type", "values", "ordered", "default"},
    "boolean": {"type", "default"},
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# PyYAML reads 1e-3 (no dot) as a string, a YAML 1.1 rule that surprises
# everyone; numbers written that way are turned back into floats.
_EXPONENT = re.compile(r"^[-+]?\d+(\.\d*)?[eE][-+]?\d+$")

# The hyperparameters the built-in model reads; a space file may redefine them.
DEFAULT_MODEL_HYPERPARAMETERS = ("units", "depth", "dropout", "learning_rate")


@dataclass(frozen=True)
class HyperParameterSpec:
    """One checked entry of a space file."""

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


class _EntryError(ValueError):
    """What is wrong with one entry; the caller adds the file and entry name."""


def load_space_file(path: Path) -> list[HyperParameterSpec]:
    """Read and check a YAML or JSON space file.

    Raises:
        InputError: the file cannot be read, or an entry is malformed (the
            message names the entry).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise InputError(f"space file {str(path)!r} cannot be read: {error}") from None
    return parse_space(data, str(path))


def parse_space(data: Any, source: str) -> list[HyperParameterSpec]:
    """Check a mapping of names to entries, as read from a space file."""
    if not isinstance(data, dict) or not data:
        raise InputError(
            f"space file {source!r}: expected a mapping of hyperparameter names "
            f"to entries such as 'units: {{type: int, min: 32, max: 256}}', "
            f"got {type(data).__name__}"
        )
    specs = []
    for name, entry in data.items():
        try:
            specs.append(parse_entry(name, entry))
        except _EntryError as error:
            raise InputError(
                f"space file {source!r}: entry {name!r}: {error}"
            ) from None
    return specs


def parse_entry(name: Any, entry: Any) -> HyperParameterSpec:
    """Check one entry; raise _EntryError saying what is wrong."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise _EntryError(
            "the name must start with a letter or '_' and hold only letters, "
            "digits and '_'"
        )
    if not isinstance(entry, dict) or "type" not in entry:
        raise _EntryError(
            f"expected a mapping with a 'type' ({', '.join(TYPES)}), got {entry!r}"
        )
    kind = str(entry["type"]).lower()
    if kind not in TYPES:
        raise _EntryError(f"type {entry['type']!r} is unknown: use {', '.join(TYPES)}")
    unknown = sorted(set(entry) - _KEYS[kind])
    if unknown:
        raise _EntryError(
            f"key {unknown[0]!r} is not allowed for type {kind} (allowed: "
            f"{', '.join(sorted(_KEYS[kind]))})"
        )
    checkers = {
        "int": _check_range,
        "float": _check_range,
        "choice": _check_choice,
        "boolean": _check_boolean,
    }
    options = checkers[kind](kind, {k: v for k, v in entry.items() if k != "type"})
    return HyperParameterSpec(name, kind, options)


def _number(value: Any, key: str, kind: str) -> int | float:
    if isinstance(value, str) and _EXPONENT.match(value):
        value = float(value)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    wanted = int if kind == "int" else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted):
        noun = "an integer" if kind == "int" else "a number"
        raise _EntryError(f"{key!r} must be {noun}, got {value!r}")
    return value


def _check_range(kind: str, entry: dict[str, Any]) -> dict[str, Any]:
    for key in ("min", "max"):
        if key not in entry:
            raise _EntryError(f"type {kind} needs {key!r}")
    low, high = _number(entry["min"], "min", kind), _number(entry["max"], "max", kind)
    if high < low or (kind == "float" and high == low):
        raise _EntryError(f"'max' ({high}) must be greater than 'min' ({low})")
    options: dict[str, Any] = {"min_value": low, "max_value": high}
    sampling = str(entry.get("sampling", "linear")).lower()
    if sampling not in SAMPLINGS:
        raise _EntryError(
            f"sampling {entry['sampling']!r} is unknown: use {', '.join(SAMPLINGS)}"
        )
    if sampling != "linear" and low <= 0:
        raise _EntryError(f"sampling {sampling} needs 'min' above 0, got {low}")
    options["sampling"] = sampling
    if "step" in entry:
        step = _number(entry["step"], "step", kind)
        if step <= 0 or (sampling == "linear" and step > high - low > 0):
            raise _EntryError(
                f"'step' ({step}) must be above 0 and at most max - min ({high - low})"
            )
        if sampling != "linear" and step <= 1:
            raise _EntryError(
                f"with sampling {sampling}, 'step' is a factor and must exceed 1, "
                f"got {step}"
            )
        options["step"] = step
    if "default" in entry:
        default = _number(entry["default"], "default", kind)
        if not low <= default <= high:
            raise _EntryError(f"'default' ({default}) is outside [{low}, {high}]")
        options["default"] = default
    return options


def _check_choice(kind: str, entry: dict[str, Any]) -> dict[str, Any]:
    values = entry.get("values")
    if not isinstance(values, list) or not values:
        raise _EntryError(
            f"type choice needs a non-empty list 'values', got {values!r}"
        )
    values = [
        float(v) if isinstance(v, str) and _EXPONENT.match(v) else v for v in values
    ]
    kinds = {"bool" if isinstance(v, bool) else type(v).__name__ for v in values}
    if kinds == {"int", "float"}:
        values, kinds = [float(v) for v in values], {"float"}
    if len(kinds) != 1 or not kinds <= {"int", "float", "str", "bool"}:
        raise _EntryError(
            f"'values' must all be integers, all numbers, all strings or all "
            f"booleans, got {values!r}"
        )
    if len(set(values)) != len(values):
        raise _EntryError(f"'values' holds duplicates: {values!r}")
    options: dict[str, Any] = {"values": values}
    if "ordered" in entry:
        if not isinstance(entry["ordered"], bool):
            raise _EntryError(
                f"'ordered' must be true or false, got {entry['ordered']!r}"
            )
        options["ordered"] = entry["ordered"]
    if "default" in entry:
        if entry["default"] not in values:
            raise _EntryError(f"'default' {entry['default']!r} is not one of 'values'")
        options["default"] = entry["default"]
    return options


def _check_boolean(kind: str, entry: dict[str, Any]) -> dict[str, Any]:
    default = entry.get("default", False)
    if not isinstance(default, bool):
        raise _EntryError(f"'default' must be true or false, got {default!r}")
    return {"default": default}


def to_hyperparameters(specs: list[HyperParameterSpec]):
    """Keras Tuner HyperParameters registering every entry of a space file."""
    import keras_tuner

    hyperparameters = keras_tuner.HyperParameters()
    makers = {
        "int": hyperparameters.Int,
        "float": hyperparameters.Float,
        "choice": hyperparameters.Choice,
        "boolean": hyperparameters.Boolean,
    }
    for spec in specs:
        try:
            makers[spec.kind](spec.name, **spec.options)
        except (ValueError, TypeError) as error:
            raise InputError(
                f"space entry {spec.name!r} is rejected by Keras Tuner: {error}"
            ) from None
    return hyperparameters


def check_space_for_model(specs: list[HyperParameterSpec], spec: str | None) -> None:
    """The built-in model reads only its own names; reject others early."""
    if spec is not None:
        return
    unused = [s.name for s in specs if s.name not in DEFAULT_MODEL_HYPERPARAMETERS]
    if unused:
        raise InputError(
            f"space entry {unused[0]!r} is not used by the built-in model, which "
            f"reads {', '.join(DEFAULT_MODEL_HYPERPARAMETERS)}: remove it, or "
            "pass --hypermodel package.module:function that uses it"
        )
