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
    """Return the multiply-adds of one image's forward pass through ``model``.

    Counts the Conv2D, DepthwiseConv2D, SeparableConv2D and Dense layers (nested
    models included); normalisation, pooling, additions and activations are not
    counted, nor are other layer types. A layer is counted once, as applied to its
    output shape: do not reuse one layer at two places. The model must be built
    (an ``Input`` or one call).
    """
    from keras import layers

    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested model, e.g. a Sequential block
            total += forward_macs(layer)
            continue
        counted = (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)
        if not isinstance(layer, (*counted, layers.Dense)):
            continue
        channels_in, channels_out = layer.input.shape[-1], layer.output.shape[-1]
        positions = layer.output.shape[1:-1]
        pixels = math.prod(positions)  # output pixels (or a Dense layer's leading axes)
        if isinstance(layer, layers.Dense):
            total += pixels * channels_in * channels_out
            continue
        window = math.prod(layer.kernel_size)
        if isinstance(layer, layers.SeparableConv2D):  # depthwise, then 1x1
            depthwise = channels_in * layer.depth_multiplier
            total += pixels * (window * depthwise + depthwise * channels_out)
        elif isinstance(layer, layers.DepthwiseConv2D):
            total += pixels * window * channels_out
        else:
            total += pixels * window * channels_in // layer.groups * channels_out
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
