"""A model's cost in units that do not drift with the machine; an epoch timer."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def forward_macs(model: keras.Model) -> int:
    """Return the multiply-adds of one image's forward pass through the built
    ``model``: the weights of each convolution's or ``Dense`` layer's kernels (frozen
    ones too) per output pixel, nested models included; other layers (pooling,
    normalisation, additions...) are not counted."""
    from keras import layers

    kinds = layers.Conv2D | layers.DepthwiseConv2D | layers.SeparableConv2D
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested model, e.g. a Sequential block
            total += forward_macs(layer)
        elif isinstance(layer, kinds | layers.Dense):
            kernels = [w.shape for w in layer.weights if w.name.endswith("kernel")]
            pixels = math.prod(layer.output.shape[1:-1])  # or Dense's leading axes
            total += pixels * sum(map(math.prod, kernels))
    return total


def train_flops(macs: int, images_seen: int) -> float:
    """Return the training FLOPs, 2 x 3 x ``macs`` x ``images_seen``: two FLOPs a
    multiply-add, and the backward pass costs twice the forward one."""
    return 2.0 * 3.0 * macs * images_seen


def epoch_timer() -> keras.callbacks.Callback:
    """A callback adding wall ``seconds`` and ``cpu_seconds`` (for ``cpu_busy``) to
    every epoch's logs; put it before ``CSVLogger``, so the log has them."""
    import keras  # here, so that the pipeline can import helpers without it

    start = {}

    def begin(epoch, logs):
        start.update(wall=time.perf_counter(), cpu=time.process_time())

    def end(epoch, logs):
        logs["seconds"] = time.perf_counter() - start["wall"]
        logs["cpu_seconds"] = time.process_time() - start["cpu"]

    return keras.callbacks.LambdaCallback(on_epoch_begin=begin, on_epoch_end=end)
