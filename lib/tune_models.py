"""Hypermodels: the built-in MLP search, or the user's function of hp."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from kerasjobs.errors import InputError
from kerasjobs.models import load_function

LEARNING_RATES = [1e-2, 1e-3, 1e-4]


def build_default_model(hp, input_shape: tuple[int, ...], num_classes: int):
    """The book's MLP search (units, learning rate), plus depth and dropout."""
    import keras

    units = hp.Int("units", min_value=32, max_value=512, step=32, default=128)
    depth = hp.Int("depth", min_value=1, max_value=3, default=1)
    dropout = hp.Float("dropout", min_value=0.0, max_value=0.5, step=0.1, default=0.2)
    model = keras.Sequential(name="tuned_mlp")
    model.add(keras.Input(shape=input_shape, name="image"))
    model.add(keras.layers.Flatten(name="flatten"))
    for layer in range(1, depth + 1):
        model.add(keras.layers.Dense(units, activation="relu", name=f"dense{layer}"))
        model.add(keras.layers.Dropout(dropout, name=f"dropout{layer}"))
    model.add(keras.layers.Dense(num_classes, activation="softmax", name="classifier"))
    return model


def load_hypermodel_function(spec: str) -> Callable[..., Any]:
    """The user's `package.module:function`, taking hp (and optionally the data).

    Raises:
        InputError: it cannot be imported or takes the wrong arguments.
    """
    function = load_function(spec, "--hypermodel", "(hp)")
    required = [
        parameter
        for parameter in inspect.signature(function).parameters.values()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind
        in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    ]
    if len(required) not in (1, 3):
        raise InputError(
            f"--hypermodel {spec} takes {len(required)} arguments: define it "
            "as function(hp) or function(hp, input_shape, num_classes)"
        )
    if len(required) == 1:
        return lambda hp, input_shape, num_classes: function(hp)
    return function


def make_hypermodel(
    spec: str | None, input_shape: tuple[int, ...], num_classes: int
) -> Callable[[Any], Any]:
    """A function of hp that builds a compiled model for this data.

    A model the user's function returns compiled is used as it is; an
    uncompiled one is compiled with Adam, whose learning rate is the
    hyperparameter `learning_rate` (a choice of 1e-2, 1e-3, 1e-4 unless the
    space file defines it), sparse categorical cross-entropy and accuracy.
    """
    builder = build_default_model if spec is None else load_hypermodel_function(spec)

    def build(hp):
        import keras

        model = builder(hp, input_shape, num_classes)
        if not isinstance(model, keras.Model):
            raise InputError(
                f"--hypermodel {spec} returned {type(model).__name__}: it must "
                "return a keras.Model"
            )
        if not getattr(model, "compiled", False):
            learning_rate = hp.Choice("learning_rate", LEARNING_RATES, default=1e-3)
            model.compile(
                optimizer=keras.optimizers.Adam(learning_rate),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                steps_per_execution=8,
                jit_compile=False,
            )
        return model

    return build
