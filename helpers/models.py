"""Model factories: one function per architecture, each returns a fresh compiled model.

Variants live in registries (name -> function building the layers), so a new variant
is one function and one registry entry. Inputs are images scaled to [0, 1]:
flattened (n, 784) for the ANN, (n, 28, 28, 1) for the CNN.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from helpers.data import IMAGE_SHAPE, NUM_CLASSES

ANN_INPUT_SHAPE = (IMAGE_SHAPE[0] * IMAGE_SHAPE[1],)
CNN_INPUT_SHAPE = (*IMAGE_SHAPE, 1)
DEFAULT_LEARNING_RATE = 1e-3


def _ann_layers(dropout: float) -> list[layers.Layer]:
    stack: list[layers.Layer] = []
    for units in (256, 128):
        stack.append(layers.Dense(units, activation="relu"))
        if dropout:
            stack.append(layers.Dropout(dropout))
    return [*stack, layers.Dense(NUM_CLASSES, activation="softmax")]


def _cnn_layers(dropout: float) -> list[layers.Layer]:
    stack: list[layers.Layer] = [
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
    ]
    for units, activation in ((128, "relu"), (NUM_CLASSES, "softmax")):
        if dropout:
            stack.append(layers.Dropout(dropout))
        stack.append(layers.Dense(units, activation=activation))
    return stack


# name -> function returning the layer stack of that variant
ANN_VARIANTS: dict[str, Callable[[], list[layers.Layer]]] = {
    "baseline": lambda: _ann_layers(dropout=0.0),
    "dropout": lambda: _ann_layers(dropout=0.3),
}
CNN_VARIANTS: dict[str, Callable[[], list[layers.Layer]]] = {
    "baseline": lambda: _cnn_layers(dropout=0.0),
    "dropout": lambda: _cnn_layers(dropout=0.5),
}
MODEL_VARIANTS = {"ann": ANN_VARIANTS, "cnn": CNN_VARIANTS}


def check_variant(model: str, variant: str) -> None:
    """Raise ``ValueError`` listing the known variants if ``variant`` is unknown."""
    if model not in MODEL_VARIANTS:
        raise ValueError(
            f"Unknown model {model!r}; known models: {sorted(MODEL_VARIANTS)}."
        )
    if variant not in MODEL_VARIANTS[model]:
        raise ValueError(
            f"Unknown {model} variant {variant!r}; known variants: "
            f"{', '.join(MODEL_VARIANTS[model])}."
        )


def compile_model(model: keras.Model, learning_rate: float) -> keras.Model:
    """Compile with Adam, sparse categorical cross-entropy and accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _build(model: str, variant: str, input_shape: tuple[int, ...], lr: float):
    check_variant(model, variant)
    stack = MODEL_VARIANTS[model][variant]()
    net = keras.Sequential(
        [keras.Input(shape=input_shape), *stack], name=f"{model}_{variant}"
    )
    return compile_model(net, lr)


def build_ann(
    variant: str = "baseline", learning_rate: float = DEFAULT_LEARNING_RATE
) -> keras.Model:
    """Build the fully connected network: 784 -> 256 -> 128 -> 10 (235,146 params).

    Args:
        variant: ``"baseline"`` or ``"dropout"`` (Dropout 0.3 after each hidden layer).
        learning_rate: Adam learning rate.

    Returns:
        A compiled model taking float32 (n, 784) in [0, 1], giving (n, 10) softmax.
    """
    return _build("ann", variant, ANN_INPUT_SHAPE, learning_rate)


def build_cnn(
    variant: str = "baseline", learning_rate: float = DEFAULT_LEARNING_RATE
) -> keras.Model:
    """Build the convolutional network (225,034 params for baseline and dropout).

    Conv 32 3x3 -> MaxPool -> Conv 64 3x3 -> MaxPool -> Flatten -> Dense 128 ->
    Dense 10.

    Args:
        variant: ``"baseline"`` or ``"dropout"`` (Dropout 0.5 before each dense layer).
        learning_rate: Adam learning rate.

    Returns:
        A compiled model taking float32 (n, 28, 28, 1) in [0, 1], giving (n, 10)
        softmax probabilities.
    """
    return _build("cnn", variant, CNN_INPUT_SHAPE, learning_rate)
