"""What a model costs, in units that do not drift with the machine: ``forward_macs``
(multiply-adds of one image's forward pass) and ``train_flops`` (2 x 3 x MACs x
images seen: two FLOPs a multiply-add, the backward pass twice the forward one);
and an epoch timer for the wall and CPU seconds behind ``cpu_busy``."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def forward_macs(model: keras.Model) -> int:
    """Return the multiply-adds of one image's forward pass through ``model``: its
    ``Conv2D`` and ``Dense`` layers, nested models included (normalisation, pooling,
    additions, activations and other layer types are not counted). A layer is
    counted once, at its output shape; the model must be built."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested model, e.g. a Sequential block
            total += forward_macs(layer)
        elif isinstance(layer, layers.Conv2D | layers.Dense):
            channels_in, channels_out = layer.input.shape[-1], layer.output.shape[-1]
            window = math.prod(getattr(layer, "kernel_size", ()))  # 1 for Dense
            groups = getattr(layer, "groups", 1)
            pixels = math.prod(layer.output.shape[1:-1])  # or Dense's leading axes
            total += pixels * window * channels_in // groups * channels_out
    return total


def train_flops(macs: int, images_seen: int) -> float:
    """Return the training FLOPs: 2 x 3 x ``macs`` x ``images_seen``."""
    return 2.0 * 3.0 * macs * images_seen


def epoch_timer() -> keras.callbacks.Callback:
    """A callback adding ``seconds`` (wall) and ``cpu_seconds`` (this process, all
    threads) to each epoch's logs. Put it before ``CSVLogger``, so the log has them.
    """
    import keras  # here, so that the pipeline can import helpers without it

    start = {}

    def begin(epoch, logs):
        start.update(wall=time.perf_counter(), cpu=time.process_time())

    def end(epoch, logs):
        logs["seconds"] = time.perf_counter() - start["wall"]
        logs["cpu_seconds"] = time.process_time() - start["cpu"]

    return keras.callbacks.LambdaCallback(on_epoch_begin=begin, on_epoch_end=end)
