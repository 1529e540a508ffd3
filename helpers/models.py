"""Model factories: one function per architecture, each returns a fresh compiled model.

Variants live in registries (name -> :class:`Variant`): a function building the
layer graph and the training :class:`Recipe` that goes with it, so a notebook trains
every variant the way its source did. A new variant is one function and one registry
entry. Inputs are images scaled to [0, 1]: flattened (n, 784) for the ANN,
(n, 28, 28, 1) for the CNN. Augmentation and input normalisation, where a recipe has
them, are layers inside the model: active in ``fit``, identity in ``predict``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
from keras import layers, ops

from helpers.data import IMAGE_SHAPE, NUM_CLASSES, REFERENCE_MEAN, REFERENCE_STD

ANN_INPUT_SHAPE = (IMAGE_SHAPE[0] * IMAGE_SHAPE[1],)
CNN_INPUT_SHAPE = (*IMAGE_SHAPE, 1)
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_TRAIN_SIZE = 50_000  # images in the training split, for schedule lengths

Graph = Callable[[keras.KerasTensor], keras.KerasTensor]


@dataclass(frozen=True)
class Recipe:
    """How a variant is trained: what its source did, in one place.

    Attributes:
        epochs: Epochs to train (the maximum when early stopping is on).
        batch_size: Mini-batch size.
        learning_rate: Initial (constant) or peak (one-cycle) learning rate.
        optimizer: ``"adam"`` or ``"adamw"``.
        weight_decay: Decoupled weight decay (AdamW only).
        clipnorm: Gradient clipping by norm, or None.
        label_smoothing: Label smoothing of the cross-entropy loss.
        schedule: ``"constant"``, or ``"one-cycle"``: linear warm-up over
            ``warmup_fraction`` of the steps to ``learning_rate``, then cosine
            decay to 0.
        warmup_fraction: Share of the steps spent warming up (one-cycle only).
        reduce_lr_on_plateau: Halve the learning rate after 2 epochs without a lower
            validation loss (constant schedule only).
        early_stopping_patience: Stop after this many epochs without a better
            validation accuracy (best weights kept); None trains every epoch.
        test_time_flip: Average the predictions of each image and its mirror image.
        test_time_shift: Also average over the image moved this many pixels up,
            down, left and right (0: no shifted views); see
            :class:`helpers.evaluation.TestTimeAveraged`.
        source: Where the recipe comes from.
    """

    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = DEFAULT_LEARNING_RATE
    optimizer: str = "adam"
    weight_decay: float = 0.0
    clipnorm: float | None = None
    label_smoothing: float = 0.0
    schedule: str = "constant"
    warmup_fraction: float = 0.0
    reduce_lr_on_plateau: bool = False
    early_stopping_patience: int | None = None
    test_time_flip: bool = False
    test_time_shift: int = 0
    source: str = ""


@dataclass(frozen=True)
class Variant:
    """One architecture: ``graph`` maps the input tensor to the softmax output."""

    graph: Graph
    recipe: Recipe = field(default_factory=Recipe)
    description: str = ""


# --- augmentation layers the Keras set lacks (saved with the model, safe to load) ---


@keras.saving.register_keras_serializable(package="helpers")
class RandomHorizontalFlip(layers.Layer):
    """Mirror each image left-right with ``probability`` during training.

    ``keras.layers.RandomFlip`` always flips with probability 0.5.
    """

    def __init__(self, probability: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.probability = probability
        self.seed = seed
        self._rng = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training or self.probability <= 0:
            return images
        n = ops.shape(images)[0]
        flip = keras.random.uniform((n, 1, 1, 1), seed=self._rng) < self.probability
        return ops.where(flip, ops.flip(images, axis=2), images)

    def get_config(self):
        return {
            **super().get_config(),
            "probability": self.probability,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="helpers")
class RandomErasing(layers.Layer):
    """Random erasing (cutout): zero one random square per image during training.

    With ``probability``, a square of side ``size`` pixels centred anywhere in the
    image (clipped at the border) is set to 0, the background value. Vectorised over
    the batch: ``keras.layers.RandomErasing`` works image by image and doubles the
    cost of an epoch on a CPU.
    """

    def __init__(
        self,
        probability: float = 0.5,
        size: int = 10,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.probability = probability
        self.size = size
        self.seed = seed
        self._rng = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training or self.probability <= 0:
            return images
        n, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        centre_y = keras.random.randint((n, 1, 1, 1), 0, height, seed=self._rng)
        centre_x = keras.random.randint((n, 1, 1, 1), 0, width, seed=self._rng)
        erase = keras.random.uniform((n, 1, 1, 1), seed=self._rng) < self.probability
        rows = ops.reshape(ops.arange(height), (1, height, 1, 1))
        cols = ops.reshape(ops.arange(width), (1, 1, width, 1))
        half = self.size // 2
        inside = (ops.abs(rows - centre_y) <= half) & (ops.abs(cols - centre_x) <= half)
        return ops.where(inside & erase, ops.zeros_like(images), images)

    def get_config(self):
        return {
            **super().get_config(),
            "probability": self.probability,
            "size": self.size,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="helpers")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing.

    Keras' own sparse loss has no ``label_smoothing``; this one-hot encodes the labels
    and smooths them: target ``1 - s + s/k`` for the true class, ``s/k`` elsewhere.
    """

    def __init__(self, label_smoothing: float = 0.0, name="sparse_ce_smoothed", **kw):
        super().__init__(name=name, **kw)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        one_hot = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


# --- layer graphs ---


def _stack(make_layers: Callable[[], list[layers.Layer]]) -> Graph:
    """Turn a function returning a list of layers into a graph applying them."""

    def graph(x):
        for layer in make_layers():
            x = layer(x)
        return x

    return graph


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


def _normalize() -> layers.Layer:
    """Standardise [0, 1] inputs with the training-set mean and std."""
    return layers.Normalization(mean=REFERENCE_MEAN, variance=REFERENCE_STD**2)


def _conv_bn(
    x,
    filters: int,
    kernel: int = 3,
    padding: str = "same",
    relu=True,
    strides=1,
    momentum: float = 0.99,
):
    x = layers.Conv2D(
        filters, kernel, strides=strides, padding=padding, use_bias=False
    )(x)
    x = layers.BatchNormalization(momentum=momentum)(x)
    return layers.ReLU()(x) if relu else x


def _bn_layers(x):
    """Three Conv-BN-ReLU-MaxPool blocks (32/64/128), Dense 192, Dropout 0.35."""
    x = layers.RandomRotation(12 / 360, fill_mode="constant")(x)
    x = layers.RandomTranslation(0.06, 0.06, fill_mode="constant")(x)
    x = RandomHorizontalFlip(0.25)(x)
    x = RandomErasing(0.25, size=8)(x)
    x = _normalize()(x)
    for filters in (32, 64, 128):
        x = layers.MaxPooling2D(2)(_conv_bn(x, filters))
    x = layers.Flatten()(x)
    x = layers.Dense(192, activation="relu")(x)
    x = layers.Dropout(0.35)(x)
    return layers.Dense(NUM_CLASSES, activation="softmax")(x)


def _deep_layers(x):
    """Conv 64, 64, pool, Conv 128, 128, pool (valid 3x3, BN), Dense 256, Dropout."""
    x = layers.RandomRotation(10 / 360, fill_mode="constant")(x)
    x = layers.RandomTranslation(0.1, 0.1, fill_mode="constant")(x)
    x = layers.RandomZoom(0.1, fill_mode="constant")(x)
    x = RandomHorizontalFlip(0.5)(x)
    for filters in (64, 128):
        x = _conv_bn(x, filters, padding="valid")
        x = _conv_bn(x, filters, padding="valid")
        x = layers.Dropout(0.25)(layers.MaxPooling2D(2)(x))
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return layers.Dense(NUM_CLASSES, activation="softmax")(x)


def _residual_block(x, filters: int, momentum: float = 0.99):
    """Two 3x3 Conv-BN with an identity shortcut, then ReLU (``x`` has ``filters``
    channels)."""
    y = _conv_bn(x, filters, momentum=momentum)
    y = _conv_bn(y, filters, relu=False, momentum=momentum)
    return layers.ReLU()(layers.Add()([x, y]))


PLUS_WIDTHS = (48, 96)  # channels of the residual stages at 14x14 and 7x7
PLUS_TRANSLATION = 0.07  # random shifts of up to 7% (2 pixels) each way
# Batch-norm running statistics forget 20% a step, not Keras' 1%: one batch already
# gives each channel's mean and variance over 6,000+ values, and after the 16 steps
# of a fast-mode epoch the running statistics must have left their initial mean 0 /
# variance 1. Measured on that epoch (test accuracy): momentum 0.9 predicts at chance
# (0.16), 0.8 gives 0.45, 0.7 gives 0.65.
PLUS_BN_MOMENTUM = 0.8


def plus_graph(
    augment: bool = True,
    residual: bool = True,
    global_pool: bool = True,
    translation: float = PLUS_TRANSLATION,
    erasing: float = 0.0,
    widths: tuple[int, int] = PLUS_WIDTHS,
) -> Graph:
    """The bundle's CNN: two residual stages, at 14x14 and 7x7, then GAP.

    A 3x3 stride-2 stem goes straight to 14x14 at the first stage's width; a max-pool
    and a 3x3 convolution widen to the second stage at 7x7. Each stage is one
    residual block (two 3x3 Conv-BN, identity shortcut). Why this shape, measured on
    the 2-core CPU (``benchmarks``): a stage at full 28x28 resolution costs about 40%
    of an epoch; identity shortcuts, with the widening done outside the blocks, avoid
    the 1x1 projection convolutions and their batch norms; and widths 48/96 train
    about 1.5 times faster than 64/128, buying more epochs in the same minutes.
    Augmentation is light (shifts of up to 2 pixels and mirroring): over a short
    schedule, heavier augmentation left the model underfitting. The switches exist
    for the ablation (``benchmarks/ablation.py``): each changes one design choice.

    Args:
        augment: Random translation and mirroring (and erasing) during training.
        residual: Identity shortcuts around each stage's two convolutions.
        global_pool: Global average pooling before the classifier, else Flatten and
            Dense 128.
        translation: Largest random shift, as a fraction of the image size.
        erasing: Probability of erasing an 8x8 square (random erasing); 0 for none.
        widths: Channels of the stages at 14x14 and 7x7.
    """

    def graph(x):
        if augment:
            x = layers.RandomTranslation(
                translation, translation, fill_mode="constant"
            )(x)
            x = RandomHorizontalFlip(0.5)(x)
            if erasing:
                x = RandomErasing(erasing, size=8)(x)
        x = _normalize()(x)
        bn = PLUS_BN_MOMENTUM
        for i, filters in enumerate(widths):
            if i == 0:
                x = _conv_bn(x, filters, strides=2, momentum=bn)
            else:
                x = layers.MaxPooling2D(2, padding="same")(x)
                x = _conv_bn(x, filters, momentum=bn)
            if residual:
                x = _residual_block(x, filters, bn)
            else:
                x = _conv_bn(_conv_bn(x, filters, momentum=bn), filters, momentum=bn)
        if global_pool:
            x = layers.GlobalAveragePooling2D()(x)
        else:
            x = layers.Dense(128, activation="relu")(layers.Flatten()(x))
        x = layers.Dropout(0.1)(x)
        return layers.Dense(NUM_CLASSES, activation="softmax")(x)

    return graph


ANN_VARIANTS: dict[str, Variant] = {
    "baseline": Variant(
        _stack(lambda: _ann_layers(dropout=0.0)), description="Dense 256, 128, 10"
    ),
    "dropout": Variant(
        _stack(lambda: _ann_layers(dropout=0.3)),
        description="Dense 256, 128, 10; Dropout 0.3 after each hidden layer",
    ),
}
CNN_VARIANTS: dict[str, Variant] = {
    "baseline": Variant(
        _stack(lambda: _cnn_layers(dropout=0.0)),
        description="Conv 32, pool, Conv 64, pool, Dense 128, 10",
    ),
    "dropout": Variant(
        _stack(lambda: _cnn_layers(dropout=0.5)),
        description="Conv 32, pool, Conv 64, pool, Dense 128, 10; Dropout 0.5",
    ),
    "bn": Variant(
        _bn_layers,
        Recipe(
            epochs=40,
            batch_size=128,
            learning_rate=3e-4,
            optimizer="adamw",
            weight_decay=3e-4,
            clipnorm=1.0,
            label_smoothing=0.05,
            reduce_lr_on_plateau=True,
            early_stopping_patience=5,
            source="published 91.85%: 3 BN blocks, AdamW, smoothing, augmentation",
        ),
        "Conv 32/64/128 + BN + ReLU + MaxPool, Dense 192, Dropout 0.35",
    ),
    "deep": Variant(
        _deep_layers,
        Recipe(
            epochs=30,
            batch_size=64,
            learning_rate=5e-4,
            early_stopping_patience=5,
            source="published 92.74%: Conv 64-64-128-128, BN, augmentation, 30 epochs",
        ),
        "Conv 64, 64, pool, Conv 128, 128, pool (BN), Dense 256, Dropout 0.5",
    ),
    "plus": Variant(
        plus_graph(),
        Recipe(
            epochs=10,
            batch_size=128,
            learning_rate=3e-3,
            optimizer="adamw",
            weight_decay=0.02,
            label_smoothing=0.1,
            schedule="one-cycle",
            warmup_fraction=0.15,
            test_time_flip=True,
            test_time_shift=1,
            source="this bundle: residual CNN, one-cycle AdamW, 12 CPU minutes",
        ),
        "stride-2 stem, residual 48 at 14x14 and 96 at 7x7, global average pool",
    ),
}
MODEL_VARIANTS = {"ann": ANN_VARIANTS, "cnn": CNN_VARIANTS}


def plus_design() -> str:
    """A short hash of the ``plus`` design: its recipe, graph defaults and BN momentum.

    Ablation rows record it (``benchmarks/ablation.py``), so a row measured against
    an older design is recognised as such and not shown beside this one.
    """
    graph = inspect.signature(plus_graph).parameters
    design = {
        "recipe": dataclasses.asdict(CNN_VARIANTS["plus"].recipe),
        "graph": {name: param.default for name, param in graph.items()},
        "bn_momentum": PLUS_BN_MOMENTUM,
    }
    text = json.dumps(design, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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


def get_recipe(model: str, variant: str) -> Recipe:
    """Return the training recipe attached to ``model``/``variant``."""
    check_variant(model, variant)
    return MODEL_VARIANTS[model][variant].recipe


def learning_rate_schedule(
    recipe: Recipe,
    learning_rate: float | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Return the recipe's learning rate: a constant, or a one-cycle schedule.

    Args:
        recipe: The training recipe.
        learning_rate: Overrides ``recipe.learning_rate`` (peak rate for one-cycle).
        epochs: Epochs the schedule spans (default ``recipe.epochs``).
        steps_per_epoch: Batches per epoch (default: the 50k training split).
    """
    rate = recipe.learning_rate if learning_rate is None else learning_rate
    if recipe.schedule == "constant":
        return rate
    if recipe.schedule != "one-cycle":
        raise ValueError(f"Unknown schedule {recipe.schedule!r}")
    steps_per_epoch = steps_per_epoch or math.ceil(
        DEFAULT_TRAIN_SIZE / recipe.batch_size
    )
    total = max(2, steps_per_epoch * (epochs or recipe.epochs))
    warmup = max(1, int(total * recipe.warmup_fraction))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=rate / 10,
        decay_steps=total - warmup,
        warmup_target=rate,
        warmup_steps=warmup,
    )


def make_optimizer(
    recipe: Recipe,
    learning_rate: float | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
) -> keras.optimizers.Optimizer:
    """Build the recipe's optimizer with its learning rate or schedule.

    Args: as :func:`learning_rate_schedule`.
    """
    rate = learning_rate_schedule(recipe, learning_rate, epochs, steps_per_epoch)
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(
            rate, weight_decay=recipe.weight_decay, clipnorm=recipe.clipnorm
        )
    return keras.optimizers.Adam(rate, clipnorm=recipe.clipnorm)


def compile_model(
    model: keras.Model, learning_rate: float, recipe: Recipe | None = None, **schedule
) -> keras.Model:
    """Compile with the recipe's optimizer (default Adam), cross-entropy and accuracy.

    Args:
        model: The model to compile.
        learning_rate: Learning rate (peak rate for a one-cycle recipe).
        recipe: Training recipe; default plain Adam, no smoothing.
        **schedule: ``epochs`` and ``steps_per_epoch`` for a one-cycle schedule.
    """
    recipe = recipe or Recipe()
    loss = (
        SparseCategoricalCrossentropy(recipe.label_smoothing)
        if recipe.label_smoothing
        else "sparse_categorical_crossentropy"
    )
    model.compile(
        optimizer=make_optimizer(recipe, learning_rate, **schedule),
        loss=loss,
        metrics=["accuracy"],
    )
    return model


def build_variant(
    spec: Variant,
    name: str,
    input_shape: tuple[int, ...] = CNN_INPUT_SHAPE,
    learning_rate: float | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
) -> keras.Model:
    """Build and compile a model from a :class:`Variant` (registered or not).

    Args:
        spec: The layer graph and recipe.
        name: Model name.
        input_shape: Shape of one input.
        learning_rate: Overrides the recipe's (peak) learning rate.
        epochs: Epochs a one-cycle schedule spans (default the recipe's).
        steps_per_epoch: Batches per epoch, for a schedule (default: 50k images).
    """
    inputs = keras.Input(shape=input_shape)
    net = keras.Model(inputs, spec.graph(inputs), name=name)
    rate = spec.recipe.learning_rate if learning_rate is None else learning_rate
    return compile_model(
        net, rate, spec.recipe, epochs=epochs, steps_per_epoch=steps_per_epoch
    )


def _build(
    model: str,
    variant: str,
    input_shape: tuple[int, ...],
    learning_rate: float | None,
    epochs: int | None,
    steps_per_epoch: int | None,
) -> keras.Model:
    check_variant(model, variant)
    return build_variant(
        MODEL_VARIANTS[model][variant],
        f"{model}_{variant}",
        input_shape,
        learning_rate,
        epochs,
        steps_per_epoch,
    )


def build_ann(
    variant: str = "baseline",
    learning_rate: float | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
) -> keras.Model:
    """Build the fully connected network: 784 -> 256 -> 128 -> 10 (235,146 params).

    Args:
        variant: ``"baseline"`` or ``"dropout"`` (Dropout 0.3 after each hidden layer).
        learning_rate: Adam learning rate (default the variant's recipe, 1e-3).
        epochs: Epochs a learning-rate schedule spans (recipes with a schedule only).
        steps_per_epoch: Batches per epoch, for a schedule.

    Returns:
        A compiled model taking float32 (n, 784) in [0, 1], giving (n, 10) softmax.
    """
    return _build(
        "ann", variant, ANN_INPUT_SHAPE, learning_rate, epochs, steps_per_epoch
    )


def build_cnn(
    variant: str = "baseline",
    learning_rate: float | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
) -> keras.Model:
    """Build a convolutional network, compiled with its variant's recipe.

    Variants (``CNN_VARIANTS``): ``"baseline"`` Conv 32 3x3 -> MaxPool -> Conv 64
    3x3 -> MaxPool -> Flatten -> Dense 128 -> Dense 10 (225,034 params);
    ``"dropout"`` the same with Dropout 0.5 before each dense layer; ``"bn"`` and
    ``"deep"`` the published recipes; ``"plus"`` this bundle's residual CNN.

    Args:
        variant: A key of ``CNN_VARIANTS``.
        learning_rate: Overrides the recipe's (peak) learning rate.
        epochs: Epochs a one-cycle schedule spans (default the recipe's).
        steps_per_epoch: Batches per epoch, for a schedule (default: 50k images).

    Returns:
        A compiled model taking float32 (n, 28, 28, 1) in [0, 1], giving (n, 10)
        softmax probabilities.
    """
    return _build(
        "cnn", variant, CNN_INPUT_SHAPE, learning_rate, epochs, steps_per_epoch
    )


def layer_table(model: keras.Model) -> list[dict[str, str | int]]:
    """Describe a model layer by layer, as rows for a table.

    Plain text, unlike ``model.summary()``, whose box-drawing characters the PDF
    fonts lack.

    Returns:
        One dict per layer (input layers left out): ``layer`` (name), ``type``,
        ``output shape`` (batch axis as None) and ``parameters``.
    """
    return [
        {
            "layer": layer.name,
            "type": type(layer).__name__,
            "output shape": str(tuple(layer.output.shape)),
            "parameters": int(layer.count_params()),
        }
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
