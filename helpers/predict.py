"""Classify garment photos: ``python -m helpers.predict IMAGE... [--model PATH]``.
Pillow puts each image in Fashion-MNIST form; the model takes the raw 0-255 pixels."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from packaging.version import InvalidVersion, Version
from PIL import Image, ImageOps, UnidentifiedImageError

from helpers.artifacts import SEED_RUN, default_output_dir, stderr_to
from helpers.data import CLASS_NAMES

if TYPE_CHECKING:
    import keras

MIN_SIDE = 8  # smaller images hold no recognisable garment
MAX_PIXELS = 50_000_000  # larger images are refused before their pixels are decoded
FAINT = 13  # Fashion-MNIST trimmed pixels within 5% of the background's intensity
Image.MAX_IMAGE_PIXELS = None  # preprocess_image refuses big images, in one line


class ImageInputError(ValueError):
    """An image file cannot be put in Fashion-MNIST form; the message says why."""


class ModelLoadError(RuntimeError):
    """No usable model: missing, refused by Keras safe mode, or the wrong shape."""


class Prediction(NamedTuple):
    """One image's result: its top classes, most probable first, or why it failed."""

    source: str
    top_k: tuple[tuple[str, float], ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"source", "top_k": [{"class", "probability"}], "error"}``."""
        top = [{"class": name, "probability": round(p, 6)} for name, p in self.top_k]
        return {"source": self.source, "top_k": top, "error": self.error}


def preprocess_image(path: str | os.PathLike) -> np.ndarray:
    """Return uint8 (28, 28): the file's garment light on black, trimmed, longest side
    28, centred (first frame, EXIF-upright); else raise ImageInputError naming it."""
    path = Path(path)
    try:
        with Image.open(path) as image:  # the size is read before pixels are decoded
            (w, h), large = image.size, image.width * image.height > MAX_PIXELS
            if large or min(w, h) < MIN_SIDE:
                size = "large (over 50 megapixels)" if large else "small (under 8x8)"
                raise ImageInputError(f"{w}x{h} image too {size}")  # named below
            image = ImageOps.exif_transpose(image)  # decodes the first frame
            if image.has_transparency_data:  # RGBA, LA, PA or a transparent colour
                white = Image.new("RGBA", image.size, "white")
                image = Image.alpha_composite(white, image.convert("RGBA"))
            elif image.mode[0] in "IF" and image.getextrema()[1] > 255:
                image = image.point(lambda v: v / 257)  # 16 bits to 8 (L would clip)
            grey = image.convert("L")
    except Exception as err:  # Pillow's decoders raise many types on bad data
        reason = {
            FileNotFoundError: "file not found",
            IsADirectoryError: "a folder, not an image file",
            UnidentifiedImageError: "not an image (Pillow cannot identify it)",
            ImageInputError: str(err),
        }.get(type(err), f"cannot read the image ({' '.join(str(err).split())})")
        raise ImageInputError(f"{path}: {reason}") from None
    px = np.asarray(grey)
    background = np.median(np.concatenate([px[0], px[-1], px[:, 0], px[:, -1]]))
    if background > 127:  # a light background: invert, so the garment is light
        grey, background = ImageOps.invert(grey), 255 - background
    grey = grey.point(lambda v: max(0, v - background))  # background to black
    box = grey.point(lambda v: 255 if v > FAINT else 0).getbbox()
    if box is None:
        raise ImageInputError(f"{path}: blank image (nothing differs from the border)")
    grey = ImageOps.autocontrast(grey).crop(box)
    return np.asarray(ImageOps.pad(grey, (28, 28), Image.Resampling.LANCZOS))


def find_model(output_dir: str | os.PathLike | None = None) -> Path:
    """Return the model of the full (not fast) main ``cnn*`` run with the best
    ``val_accuracy`` in ``output_dir`` (default ``artifacts/``); else ModelLoadError."""
    folder = Path(output_dir or default_output_dir())
    none, fix = "no CNN of a full run", "run `make run` or pass --model PATH"
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ModelLoadError(f"{none}: {folder} {what}; {fix}")
    best, best_accuracy = None, -1.0
    for metrics_file in sorted((folder / "metrics").glob("*.json")):
        try:
            metrics = json.loads(metrics_file.read_text())
            run, accuracy = str(metrics["run"]), float(metrics["val_accuracy"])
        except (OSError, ValueError, TypeError, KeyError):
            continue  # not a run's metrics file
        model_file = folder / "models" / f"{run}.keras"
        full_cnn = run.startswith("cnn") and metrics.get("fast") is False
        full_cnn &= not SEED_RUN.fullmatch(run)  # a main run, not one of make seeds
        if full_cnn and model_file.is_file() and accuracy > best_accuracy:
            best, best_accuracy = model_file, accuracy
    if best:
        return best
    raise ModelLoadError(f"{none} in {folder} (metrics/*.json, models/*.keras): {fix}")


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` model in Keras safe mode (no Python code runs) that maps 28x28
    (x1) pixels to 10 classes; else raise ModelLoadError naming the file and why."""
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a model file" if path.is_dir() else "model file not found"
        raise ModelLoadError(f"{path}: {what}")
    if path.suffix in (".h5", ".hdf5"):
        raise ModelLoadError(
            f"{path}: a legacy HDF5 model; only .keras files are loaded (in Keras, "
            "load it with keras.saving.load_model and save it as .keras)"
        )
    if path.suffix != ".keras":
        raise ModelLoadError(f"{path}: not a .keras file")
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many types for a bad archive
        reason = f"cannot load the model: {' '.join(str(err).split())}"
        saved, installed = saved_by(path), keras.version()
        with contextlib.suppress(InvalidVersion, TypeError):  # a damaged metadata
            if saved and Version(saved) > Version(installed):
                reason = (
                    f"saved by Keras {saved}, which Keras {installed} (the one "
                    f'installed) cannot read: pip install -U "keras>={saved}", or '
                    "retrain in this environment"
                )
        raise ModelLoadError(f"{path}: {reason}") from None
    shapes = model.input_shape, model.output_shape
    if shapes not in [((None, 28, 28), (None, 10)), ((None, 28, 28, 1), (None, 10))]:
        raise ModelLoadError(f"{path}: shapes {shapes} are not 28x28(x1) in, 10 out")
    return model


def saved_by(path: str | os.PathLike) -> str | None:
    """The version of Keras that saved a ``.keras`` file (its ``metadata.json``)."""
    errors = (OSError, KeyError, ValueError, zipfile.BadZipFile)
    with contextlib.suppress(*errors), zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("metadata.json"))["keras_version"]
    return None


def predict_images(
    paths: Sequence[str | os.PathLike],
    model: keras.Model | str | os.PathLike | None = None,
    top_k: int = 3,
) -> list[Prediction]:
    """Return one Prediction per path, its ``top_k`` classes or its ``error``;
    ``model``: a Keras model, a ``.keras`` path, or None (:func:`find_model`)."""
    if model is None or isinstance(model, (str, os.PathLike)):
        model = load_model(find_model() if model is None else model)
    results, images = [], {}  # a Prediction per path; uint8 (28, 28) per good image
    for index, path in enumerate([paths] if isinstance(paths, str) else paths):
        try:
            images[index] = preprocess_image(path)
            results.append(Prediction(os.fspath(path)))
        except ImageInputError as err:
            results.append(Prediction(os.fspath(path), error=str(err)))
    if images:  # one batch, float32 (n, 28, 28, 1) of raw 0-255 pixels
        batch = np.stack(list(images.values())).astype(np.float32)[..., np.newaxis]
        for index, p in zip(images, model.predict(batch, verbose=0), strict=True):
            top = tuple((CLASS_NAMES[i], float(p[i])) for i in np.argsort(-p)[:top_k])
            results[index] = Prediction(results[index].source, top)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return 0, or 2 when the model or any image failed."""
    parser = argparse.ArgumentParser("python -m helpers.predict", description=__doc__)
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--model", metavar="PATH", help="a .keras model file")
    parser.add_argument("--top-k", type=int, choices=range(1, 11), default=3)
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.add_argument("--output-dir", metavar="DIR", help="artifacts to search")

    def refuse(message: str):  # one line, not argparse's usage and exit
        raise argparse.ArgumentError(None, message)

    parser.error = refuse
    try:
        args = parser.parse_args(argv)
        paths = {"--model": args.model, "--output-dir": args.output_dir}
        for option, value in paths.items():
            if value is not None and not value.strip():
                refuse(f"argument {option}: an empty path; leave the option out")
        with stderr_to(os.devnull):  # TensorFlow's start-up lines: nothing but results
            model = load_model(args.model or find_model(args.output_dir))
            results = predict_images(args.images, model, args.top_k)
    except (argparse.ArgumentError, ModelLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for result in results:
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
        elif not args.json:
            shown = ", ".join(f"{name} {p:.0%}" for name, p in result.top_k)
            print(f"{result.source}: {shown}")
    if args.json:
        print(json.dumps([result.to_dict() for result in results], indent=2))
    return 2 if any(result.error for result in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
