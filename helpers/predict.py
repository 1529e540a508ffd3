"""Classify your own images with a trained model: ``python -m helpers.predict``.

Each image is turned into Fashion-MNIST form the way the dataset was made: greyscale,
the garment light on a dark background (inverted when the background is light),
trimmed to the object, fitted into 28x28 keeping the aspect ratio (longest side 28)
and centred. The default model is the best CNN (highest test accuracy) among the
runs in the artifacts folder.

Bad input never stops the other images: a missing, empty, undecodable, too small
(under 2x2) or too large (over 50 megapixels) image, or a blank one (no pixel more
than 5% away from the background), gets a one-line error naming the file and the
reason, and the exit code is 2. Models load with Keras safe mode on; nothing is
unpickled.

Example::

    python -m helpers.predict shirt.jpg boot.png --top-k 3
    python -m helpers.predict photos/*.jpg --json --model artifacts/models/x.keras
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image, ImageOps, ImageStat, UnidentifiedImageError

import helpers.models  # noqa: F401  (registers the custom layers saved models use)
from helpers.artifacts import load_run_metrics, resolve_output_dir
from helpers.data import CLASS_NAMES, IMAGE_SHAPE, NUM_CLASSES

MAX_PIXELS = 50_000_000  # larger images are refused before their pixels are decoded
MIN_SIDE = 2  # smaller images (e.g. 1x1) hold no garment
ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
# A pixel belongs to the object when it differs from the background by at least 5%
# of the intensity range: the closeness Fashion-MNIST used when trimming its photos.
TRIM_THRESHOLD = 13
BORDER_FRACTION = 0.02  # the border ring whose median gives the background level
DEFAULT_TOP_K = 3
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")

ImageSource = str | os.PathLike | bytes | np.ndarray | Image.Image


class ImageInputError(ValueError):
    """An input cannot be turned into a 28x28 image; the message is the reason."""


class ModelLoadError(RuntimeError):
    """The model file is missing, not a Keras model, or has the wrong shape."""


@dataclass(frozen=True)
class Prediction:
    """The result for one input: its top classes, or why it failed.

    Attributes:
        source: The file path, or a label such as ``"<ndarray 2>"`` or
            ``"<bytes 0>"`` (type and position) for in-memory input.
        top_k: ``(class_name, probability)`` pairs, most probable first.
        probabilities: float32 (10,) probabilities in ``CLASS_NAMES`` order.
        image: The uint8 (28, 28) image the model saw.
        error: The one-line reason this input failed (then the others are empty).
    """

    source: str
    top_k: tuple[tuple[str, float], ...] = ()
    probabilities: np.ndarray | None = None
    image: np.ndarray | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the input was predicted."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"file", "predictions": [{"class", "probability"}]}`` or
        ``{"file", "error"}``, ready for ``json.dumps``."""
        if self.error is not None:
            return {"file": self.source, "error": self.error}
        return {
            "file": self.source,
            "predictions": [
                {"class": name, "probability": round(p, 6)} for name, p in self.top_k
            ],
        }


# --- reading images -----------------------------------------------------------------


def squash_lines(text: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space."""
    return " ".join(text.split())


def check_image_size(width: int, height: int) -> None:
    """Raise :class:`ImageInputError` unless ``MIN_SIDE`` <= sides and pixels <=
    ``MAX_PIXELS``."""
    if width * height > MAX_PIXELS:
        raise ImageInputError(
            f"image too large: {width}x{height} = {width * height / 1e6:.1f} "
            f"megapixels, the limit is {MAX_PIXELS / 1e6:.0f} megapixels"
        )
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageInputError(
            f"image too small: {width}x{height} pixels, need at least "
            f"{MIN_SIDE}x{MIN_SIDE}"
        )


def open_image_file(source: str | os.PathLike | bytes) -> Image.Image:
    """Open, check and decode an image file (or its bytes), upright per its EXIF.

    The size is checked from the header, before any pixel is decoded.

    Args:
        source: A path to a PNG, JPEG, BMP, GIF or WebP file, or the file's bytes.

    Returns:
        The decoded first frame, rotated as its EXIF orientation says.

    Raises:
        ImageInputError: the file is missing, empty, not a supported image,
            truncated, or too small or too large.
    """
    if isinstance(source, bytes):
        if not source:
            raise ImageInputError("empty file (0 bytes)")
        fp: Any = io.BytesIO(source)
    else:
        fp = Path(source)
        if not fp.exists():
            raise ImageInputError("file not found")
        if not fp.is_file():
            raise ImageInputError("not a regular file")
        if fp.stat().st_size == 0:
            raise ImageInputError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(fp, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as err:
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6
        raise ImageInputError(
            f"image too large: over {limit:.0f} megapixels, the limit is "
            f"{MAX_PIXELS / 1e6:.0f} megapixels"
        ) from err
    except UnidentifiedImageError as err:
        raise ImageInputError(
            f"not a supported image (expected one of {', '.join(ACCEPTED_FORMATS)})"
        ) from err
    except OSError as err:
        raise ImageInputError(f"cannot read the file: {err.strerror or err}") from err
    with image:
        check_image_size(*image.size)
        return decode_image(image)


def decode_image(image: Image.Image) -> Image.Image:
    """Decode the pixels of an opened image and apply its EXIF orientation.

    Raises:
        ImageInputError: the pixel data is truncated or corrupt.
    """
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except Exception as err:  # Pillow's decoders raise many types on bad data
        reason = squash_lines(str(err)) or type(err).__name__
        raise ImageInputError(f"cannot decode the image: {reason}") from err


def array_to_image(array: np.ndarray) -> Image.Image:
    """Wrap a numpy image as a Pillow image.

    Args:
        array: (h, w) greyscale, or (h, w, 1|3|4) grey/RGB/RGBA; uint8 or uint16
            pixels, bool, or floats in [0, 1].

    Returns:
        An ``L``, ``RGB`` or ``RGBA`` image (``I;16`` for uint16 greyscale).

    Raises:
        ImageInputError: the shape, dtype or value range is not one of the above.
    """
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))):
        raise ImageInputError(
            f"unsupported array shape {array.shape}: expected (h, w), (h, w, 1), "
            "(h, w, 3) or (h, w, 4)"
        )
    check_image_size(array.shape[1], array.shape[0])
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = (array.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ImageInputError("float pixels must be finite and in [0, 1]")
        array = (array * 255.0).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageInputError(
            f"unsupported pixel type {array.dtype}: expected uint8, uint16, bool "
            "or floats in [0, 1]"
        )
    return Image.fromarray(np.ascontiguousarray(array))


def read_image(source: ImageSource) -> Image.Image:
    """Return a decoded Pillow image from a path, file bytes, array or image.

    Raises:
        ImageInputError: the input cannot be read (see :func:`open_image_file`
            and :func:`array_to_image`).
    """
    if isinstance(source, Image.Image):
        check_image_size(*source.size)
        return decode_image(source)
    if isinstance(source, np.ndarray):
        return array_to_image(source)
    return open_image_file(source)


# --- Fashion-MNIST form -------------------------------------------------------------


def flatten_transparency(image: Image.Image) -> np.ndarray:
    """Return the greyscale of an image with alpha, laid on a contrasting background.

    The background is black when the visible pixels are light on average and white
    when they are dark, so the garment stands out either way.

    Args:
        image: Any Pillow image with an alpha channel or a transparent colour.

    Returns:
        uint8 (h, w) greyscale.
    """
    rgba = image.convert("RGBA")
    grey = rgba.convert("L")
    alpha = rgba.getchannel("A")
    low, high = alpha.getextrema()
    if low == 255:
        return np.asarray(grey)
    if high == 0:  # fully transparent: nothing to see
        return np.zeros((image.height, image.width), dtype=np.uint8)
    visible = alpha.point(lambda a: 255 if a >= 128 else 0)
    if visible.getextrema()[1] == 0:
        visible = alpha.point(lambda a: 255 if a > 0 else 0)
    mean = ImageStat.Stat(grey, mask=visible).mean[0]
    background = Image.new("L", grey.size, 0 if mean > 127.5 else 255)
    return np.asarray(Image.composite(grey, background, alpha))


def convert_to_greyscale(image: Image.Image) -> np.ndarray:
    """Return the image as 8-bit greyscale.

    16-bit and 32-bit greyscale are scaled down (Pillow's own conversion would clip
    them); transparency is flattened by :func:`flatten_transparency`.

    Args:
        image: A decoded Pillow image in any mode (RGB, RGBA, P, L, LA, 1, I;16, ...).

    Returns:
        uint8 (h, w) greyscale, 0 black to 255 white.

    Raises:
        ImageInputError: Pillow cannot convert the mode to greyscale (e.g. LAB).
    """
    if image.mode in _HIGH_DEPTH_MODES:
        values = np.asarray(image).astype(np.float64)
        is_16_bit = image.mode.startswith("I;16") or values.max() > 255
        full_scale = 65535.0 if is_16_bit else 255.0
        return (
            (np.clip(values, 0, full_scale) * (255.0 / full_scale))
            .round()
            .astype(np.uint8)
        )
    try:
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            return flatten_transparency(image)
        return np.asarray(image.convert("L"))
    except ValueError as err:  # e.g. LAB, which Pillow cannot convert to L
        raise ImageInputError(f"unsupported colour mode {image.mode}") from err


def estimate_background(grey: np.ndarray) -> float:
    """Return the background level: the median of a border ring 2% of the image wide.

    Args:
        grey: uint8 (h, w) greyscale.

    Returns:
        The background intensity in [0, 255].
    """
    width = max(1, round(min(grey.shape) * BORDER_FRACTION))
    border = np.concatenate(
        [
            grey[:width].ravel(),
            grey[-width:].ravel(),
            grey[:, :width].ravel(),
            grey[:, -width:].ravel(),
        ]
    )
    return float(np.median(border))


def make_light_on_dark(grey: np.ndarray) -> np.ndarray:
    """Invert a light-background image and map the background level to black.

    Fashion-MNIST garments are light on a black background. When the background
    (see :func:`estimate_background`) is lighter than mid-grey the image is
    inverted; then intensities are stretched linearly so the background becomes 0
    and 255 stays 255.

    Args:
        grey: uint8 (h, w) greyscale.

    Returns:
        uint8 (h, w), background 0, garment light.
    """
    background = estimate_background(grey)
    if background > 127.5:
        grey = 255 - grey
        background = 255.0 - background
    levels = np.arange(256, dtype=np.float64)
    lookup = np.clip((levels - background) * 255.0 / (255.0 - background), 0, 255)
    return lookup.round().astype(np.uint8)[grey]


def trim_to_object(image: np.ndarray, threshold: int = TRIM_THRESHOLD) -> np.ndarray:
    """Crop to the bounding box of the pixels at or above ``threshold``.

    Args:
        image: uint8 (h, w), background 0 (see :func:`make_light_on_dark`).
        threshold: The smallest intensity that counts as the object.

    Returns:
        uint8 (h', w') crop.

    Raises:
        ImageInputError: no pixel reaches ``threshold`` (a blank, uniform image).
    """
    mask = image >= threshold
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ImageInputError(
            "no object found: the image is uniform (no pixel differs from the "
            f"background by {threshold} of 255 levels or more)"
        )
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_to_square(image: np.ndarray, size: int = IMAGE_SHAPE[0]) -> np.ndarray:
    """Resize so the longest side is ``size`` (aspect ratio kept) and centre it.

    Args:
        image: uint8 (h, w) object crop, background 0.
        size: The side of the square canvas.

    Returns:
        uint8 (size, size), the object centred on a black canvas.
    """
    height, width = image.shape
    scale = size / max(height, width)
    new_height = min(size, max(1, round(height * scale)))
    new_width = min(size, max(1, round(width * scale)))
    resized = Image.fromarray(image).resize(
        (new_width, new_height), Image.Resampling.LANCZOS, reducing_gap=3.0
    )
    canvas = np.zeros((size, size), dtype=np.uint8)
    # An odd margin puts its extra pixel above and left, as in Fashion-MNIST.
    top, left = (size - new_height + 1) // 2, (size - new_width + 1) // 2
    canvas[top : top + new_height, left : left + new_width] = np.asarray(resized)
    return canvas


def preprocess_image(source: ImageSource) -> np.ndarray:
    """Turn one image into Fashion-MNIST form.

    Greyscale, light garment on black (inverted when the background is light),
    trimmed to the object, longest side scaled to 28 with the aspect ratio kept,
    centred on a 28x28 canvas.

    Args:
        source: A file path, the file's bytes, a Pillow image, or an array
            (see :func:`array_to_image`).

    Returns:
        uint8 (28, 28), like one ``load_fashion_mnist`` image.

    Raises:
        ImageInputError: the input is unreadable, too small or too large, or blank.
    """
    grey = convert_to_greyscale(read_image(source))
    return fit_to_square(trim_to_object(make_light_on_dark(grey)))


# --- the model ----------------------------------------------------------------------


def find_best_cnn(output_dir: str | os.PathLike | None = None) -> Path:
    """Return the model file of the CNN run with the highest test accuracy.

    The command predicts with that model alone: a run evaluated with test-time
    averaging (``test_time_flip``, ``test_time_shift``) scores a little higher than
    single predictions.

    Args:
        output_dir: Artifacts folder (default: the project's ``artifacts/``).

    Returns:
        ``<output_dir>/models/<run>.keras`` (not checked to exist).

    Raises:
        ModelLoadError: no metrics file describes a CNN run.
    """
    folder = resolve_output_dir(output_dir)
    try:
        runs = load_run_metrics(folder)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot read the metrics in {folder}: {err}") from err
    cnn_runs = {
        run: metrics["test_accuracy"]
        for run, metrics in runs.items()
        if isinstance(metrics, dict)
        and metrics.get("model") == "cnn"
        and isinstance(metrics.get("test_accuracy"), (int, float))
    }
    if not cnn_runs:
        raise ModelLoadError(
            f"no trained CNN found in {folder / 'metrics'}: run `make run` first, "
            "or pass --model PATH"
        )
    best = max(cnn_runs, key=cnn_runs.__getitem__)  # ties: first run name
    return folder / "models" / f"{best}.keras"


def check_model_shapes(model: keras.Model) -> None:
    """Raise :class:`ModelLoadError` unless the model maps 28x28 images to 10 classes.

    Accepted inputs: (None, 28, 28, 1), (None, 28, 28) or (None, 784).
    """
    inputs = getattr(model, "input_shape", None)  # unbuilt models have none
    outputs = getattr(model, "output_shape", None)
    pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    accepted = [(None, *IMAGE_SHAPE, 1), (None, *IMAGE_SHAPE), (None, pixels)]
    if not isinstance(inputs, tuple) or tuple(inputs) not in accepted:
        raise ModelLoadError(
            f"model input shape {inputs} is not one of {accepted}: not a "
            "Fashion-MNIST model"
        )
    if not isinstance(outputs, tuple) or tuple(outputs) != (None, NUM_CLASSES):
        raise ModelLoadError(
            f"model output shape {outputs} is not (None, {NUM_CLASSES})"
        )


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` model with safe mode on (no code, nothing unpickled).

    Args:
        path: A ``.keras`` file saved by ``model.save`` or ``artifacts.save_model``.

    Returns:
        The uncompiled model, checked to take 28x28 images and give 10 classes.

    Raises:
        ModelLoadError: the file is missing, not a ``.keras`` archive, refused by
            safe mode, or has the wrong shapes. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path}: not a Keras model (expected a .keras archive)")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a bad archive
        reason = squash_lines(f"{type(err).__name__}: {err}")
        raise ModelLoadError(f"{path}: not a loadable Keras model ({reason})") from err
    try:
        check_model_shapes(model)
    except ModelLoadError as err:
        raise ModelLoadError(f"{path}: {err}") from err
    return model


def shape_for_model(images: np.ndarray, model: keras.Model) -> np.ndarray:
    """Scale uint8 (n, 28, 28) images to float32 [0, 1] shaped for ``model``.

    Returns:
        float32 (n, 28, 28, 1), (n, 28, 28) or (n, 784), per ``model.input_shape``.
    """
    scaled = images.astype(np.float32) / 255.0
    return scaled.reshape((len(images), *model.input_shape[1:]))


def to_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Return ``outputs`` if they are probabilities, else their softmax.

    Args:
        outputs: float (n, 10) model outputs (softmax probabilities or logits).

    Returns:
        float32 (n, 10), each row summing to 1.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    is_softmax = outputs.min() >= 0 and np.allclose(outputs.sum(axis=1), 1, atol=1e-3)
    if not is_softmax:
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        outputs = shifted / shifted.sum(axis=1, keepdims=True)
    return outputs.astype(np.float32)


def top_classes(probabilities: np.ndarray, k: int) -> tuple[tuple[str, float], ...]:
    """Return the ``k`` most probable ``(class_name, probability)`` pairs.

    Args:
        probabilities: float (10,) in ``CLASS_NAMES`` order.
        k: How many classes, 1 to 10.
    """
    order = np.argsort(-probabilities, kind="stable")[:k]
    return tuple((CLASS_NAMES[i], float(probabilities[i])) for i in order)


def label_source(source: ImageSource, index: int) -> str:
    """Name an input for messages: its path, or ``<ndarray 2>`` (type, position)."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return f"<{type(source).__name__} {index}>"


def predict_images(
    sources: Sequence[ImageSource] | ImageSource,
    model: keras.Model | str | os.PathLike | None = None,
    top_k: int = DEFAULT_TOP_K,
    output_dir: str | os.PathLike | None = None,
) -> list[Prediction]:
    """Classify images: one :class:`Prediction` per input, failures included.

    Args:
        sources: Paths, file bytes, Pillow images or arrays (a single one is fine),
            e.g. the names ``google.colab.files.upload()`` saved.
        model: A Keras model, a ``.keras`` path, or None for the best CNN of the run
            in ``output_dir`` (see :func:`find_best_cnn`).
        top_k: How many classes to keep per image, 1 to 10.
        output_dir: Artifacts folder used to find the default model.

    Returns:
        One result per input, in order; a bad input has ``error`` set instead of
        ``top_k``, and does not stop the others.

    Raises:
        ModelLoadError: the model cannot be found or loaded.
        ValueError: ``top_k`` is not in 1..10.
    """
    if not 1 <= top_k <= NUM_CLASSES:
        raise ValueError(f"top_k must be between 1 and {NUM_CLASSES}, got {top_k}")
    if isinstance(sources, (str, os.PathLike, bytes, np.ndarray, Image.Image)):
        sources = [sources]
    if model is None:
        model = find_best_cnn(output_dir)
    if isinstance(model, keras.Model):
        check_model_shapes(model)
    else:
        model = load_model(model)
    results: list[Prediction] = []
    images: dict[int, np.ndarray] = {}
    for index, source in enumerate(sources):
        name = label_source(source, index)
        try:
            images[index] = preprocess_image(source)
            results.append(Prediction(source=name))
        except ImageInputError as err:
            results.append(Prediction(source=name, error=squash_lines(str(err))))
        except Exception as err:  # an input we did not foresee must not stop the rest
            reason = squash_lines(f"{type(err).__name__}: {err}")
            results.append(Prediction(source=name, error=reason))
    if images:
        batch = np.stack(list(images.values()))
        outputs = model.predict(shape_for_model(batch, model), verbose=0)
        for (index, image), probs in zip(
            images.items(), to_probabilities(outputs), strict=True
        ):
            results[index] = Prediction(
                source=results[index].source,
                top_k=top_classes(probs, top_k),
                probabilities=probs,
                image=image,
            )
    return results


# --- command line -------------------------------------------------------------------


def format_prediction(result: Prediction) -> str:
    """Return ``"file: Class 71.2%, Class 20.1%, ..."`` for one predicted input."""
    classes = ", ".join(f"{name} {p:.1%}" for name, p in result.top_k)
    return f"{result.source}: {classes}"


def parse_top_k(text: str) -> int:
    """Argparse type for ``--top-k``: an integer from 1 to 10."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= NUM_CLASSES:
        raise argparse.ArgumentTypeError(
            f"must be an integer from 1 to {NUM_CLASSES}, got {text!r}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the ``python -m helpers.predict`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m helpers.predict",
        description="Classify PNG/JPEG/BMP images with a trained Fashion-MNIST model.",
        epilog="Exit code 2 when the model or any image failed; every other image "
        "is still predicted.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument(
        "--model",
        metavar="PATH",
        help="a .keras model (default: the best CNN of the last run)",
    )
    parser.add_argument(
        "--top-k",
        type=parse_top_k,
        default=DEFAULT_TOP_K,
        help=f"classes to show per image (default {DEFAULT_TOP_K})",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per image per line"
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        help="artifacts folder to take the default model from (default: artifacts/)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return 0 when every image was predicted, else 2."""
    args = build_parser().parse_args(argv)
    try:
        model = load_model(args.model or find_best_cnn(args.output_dir))
    except ModelLoadError as err:
        print(f"error: {squash_lines(str(err))}", file=sys.stderr)
        return 2
    results = predict_images(args.images, model=model, top_k=args.top_k)
    for result in results:
        if not result.ok:
            print(f"error: {result.source}: {result.error}", file=sys.stderr)
        if args.json:
            print(json.dumps(result.to_dict()))
        elif result.ok:
            print(format_prediction(result))
    return 0 if all(result.ok for result in results) else 2


if __name__ == "__main__":
    raise SystemExit(main())
