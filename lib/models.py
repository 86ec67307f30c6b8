"""Model builders: the built-in MLP and CNN, or a user's `module:function`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from kerasjobs.config import BUILTIN_MODELS
from kerasjobs.errors import InputError

EMBEDDING_LAYER = "embedding"


def build_mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    units: int = 256,
    dropout_rate: float = 0.2,
):
    """Flatten, two dense layers (the second is the embedding), softmax."""
    import keras

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(units, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    x = keras.layers.Dense(units // 2, activation="relu", name=EMBEDDING_LAYER)(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="classifier"
    )(x)
    return keras.Model(inputs, outputs, name="mlp")


def build_cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    filters: int = 32,
    dropout_rate: float = 0.25,
):
    """Two convolution blocks, a dense embedding layer, softmax."""
    import keras

    if len(input_shape) != 3 or min(input_shape[:2]) < 4:
        raise InputError(
            f"--model cnn needs images of at least 4x4 pixels, got rows of shape "
            f"{input_shape}: use --model mlp for flat feature vectors"
        )
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block, width in enumerate((filters, filters * 2), start=1):
        x = keras.layers.Conv2D(
            width, 3, padding="same", activation="relu", name=f"conv{block}"
        )(x)
        x = keras.layers.MaxPooling2D(name=f"pool{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(dropout_rate, name="dropout")(x)
    x = keras.layers.Dense(128, activation="relu", name=EMBEDDING_LAYER)(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="classifier"
    )(x)
    return keras.Model(inputs, outputs, name="cnn")


def resolve_builder(spec: str) -> Callable[..., Any]:
    """The builder function named by --model.

    Raises:
        InputError: unknown name, or a `module:function` that cannot be loaded.
    """
    if spec == "mlp":
        return build_mlp
    if spec == "cnn":
        return build_cnn
    if ":" not in spec:
        raise InputError(
            f"unknown model {spec!r}: use {' or '.join(BUILTIN_MODELS)}, or "
            "package.module:function for your own builder"
        )
    return load_function(spec, "--model", "(input_shape, num_classes)")


def load_function(spec: str, flag: str, signature: str) -> Callable[..., Any]:
    """The function named by `package.module:function`, for option `flag`.

    Raises:
        InputError: the module cannot be imported or has no such function.
    """
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise InputError(
            f"{flag} {spec!r} is not package.module:function: name a function "
            f"taking {signature}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InputError(
            f"cannot import {module_name!r} for {flag} {spec} ({error}): "
            "check the module is installed or on PYTHONPATH"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InputError(
            f"{module_name!r} has no function {function_name!r} for {flag} "
            f"{spec}: define {function_name}{signature}"
        )
    return function


def build_model(spec: str, input_shape: tuple[int, ...], num_classes: int):
    """Build and check the model named by `spec` for this data.

    Raises:
        InputError: the builder fails or returns something unusable.
    """
    import keras

    builder = resolve_builder(spec)
    try:
        model = builder(input_shape, num_classes)
    except InputError:
        raise
    except Exception as error:
        raise InputError(
            f"model builder {spec} failed for input shape {input_shape} and "
            f"{num_classes} classes: {type(error).__name__}: {error}"
        ) from None
    if not isinstance(model, keras.Model):
        raise InputError(
            f"model builder {spec} returned {type(model).__name__}: it must "
            "return an uncompiled keras.Model"
        )
    output_shape = tuple(model.outputs[0].shape) if model.outputs else ()
    if not output_shape or output_shape[-1] != num_classes:
        raise InputError(
            f"model builder {spec} returns outputs of shape {output_shape}: "
            f"the last axis must have one unit per class ({num_classes}), "
            "with a softmax activation"
        )
    return model
