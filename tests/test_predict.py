"""``helpers.predict``: Fashion-MNIST-form preprocessing, the model, and the CLI.

The model is a tiny untrained Keras model saved once per module: these tests check
the plumbing and the preprocessing, not accuracy. Nothing here trains.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python
from PIL import Image

from helpers import artifacts, predict
from helpers.data import CLASS_NAMES
from helpers.predict import ImageInputError, ModelLoadError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEST_IMAGES = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


# --- builders -----------------------------------------------------------------------


def save(path: Path, image: np.ndarray | Image.Image, **options) -> Path:
    """Save an array or Pillow image to ``path`` (format from the suffix)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image.save(path, **options)
    return path


def shirt_on(background: int, garment: int, size: tuple[int, int] = (150, 120)):
    """uint8 (h, w): an off-centre shirt (body, sleeves, a print) on ``background``."""
    canvas = np.full(size, background, dtype=np.uint8)
    canvas[30:130, 30:70] = garment  # body: 100 tall
    canvas[30:60, 15:85] = garment  # sleeves: the object is 70 wide
    canvas[70:90, 40:60] = (garment + background) // 2  # a print
    return canvas


def object_box(image: np.ndarray, threshold: int = 25) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels brighter than ``threshold``."""
    rows, cols = np.nonzero(image > threshold)
    return rows.min(), rows.max(), cols.min(), cols.max()


def assert_fashion_form(image: np.ndarray) -> tuple[int, int, int, int]:
    """A uint8 28x28 light object on black whose longest side spans 28 pixels."""
    assert image.shape == (28, 28)
    assert image.dtype == np.uint8
    assert image[[0, 0, -1, -1], [0, -1, 0, -1]].max() < 30, "background not dark"
    assert image.max() > 200, "object not light"
    top, bottom, left, right = object_box(image)
    assert max(bottom - top, right - left) >= 26, "object does not fill the frame"
    return top, bottom, left, right


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` but holds almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )
    return path


def dense_model(units: int = 10, lambda_layer: bool = False):
    """A tiny untrained model: raw 0-255 (28, 28, 1) pixels in, softmax out."""
    import keras

    keras.utils.set_random_seed(0)
    scale = (
        keras.layers.Lambda(lambda x: x / 255.0)
        if lambda_layer
        else keras.layers.Rescaling(1 / 255)
    )
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            scale,
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A saved tiny model, shared by the module's tests."""
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    dense_model().save(path)
    return path


def run_cli(cwd: Path, *args: str | os.PathLike) -> subprocess.CompletedProcess:
    """Run ``python -m helpers.predict`` from ``cwd``, outside the project."""
    return run_python("-m", "helpers.predict", *args, cwd=cwd, timeout=120)


# --- preprocessing ------------------------------------------------------------------


def test_dark_garment_on_white_is_inverted_and_centred(tmp_path):
    rng = np.random.default_rng(0)
    photo = shirt_on(background=250, garment=40).astype(np.int16)
    photo += rng.integers(-5, 6, photo.shape, dtype=np.int16)  # sensor noise
    image = predict.preprocess_image(save(tmp_path / "shirt.png", photo.astype("u1")))
    top, bottom, left, right = assert_fashion_form(image)
    assert (top, bottom) == (0, 27)  # the taller side fills the frame
    assert abs((left + right) / 2 - 13.5) <= 1  # centred, though off-centre before
    assert image[22, 14] > 200  # the body, now light ...
    assert 60 < image[14, 14] < image[22, 14]  # ... the print between body and black


def test_aspect_ratio_is_kept(tmp_path):
    canvas = np.zeros((200, 200), dtype=np.uint8)
    canvas[20:140, 150:180] = 220  # 120 tall, 30 wide, off-centre
    image = predict.preprocess_image(save(tmp_path / "tall.png", canvas))
    top, bottom, left, right = assert_fashion_form(image)
    assert (top, bottom) == (0, 27)
    assert 6 <= right - left + 1 <= 8  # 28 * 30 / 120 = 7
    assert left in (10, 11)


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((60, 120), dtype=np.uint8)
    stored[20:40, 10:110] = 200  # wide as stored, tall as the camera meant it
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    path = save(tmp_path / "phone.jpg", stored, exif=exif)
    top, bottom, left, right = assert_fashion_form(predict.preprocess_image(path))
    assert bottom - top > 2 * (right - left)


def test_rgba_with_transparent_background(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (80, 60, 4), dtype=np.uint8)  # colour noise ...
    rgba[..., 3] = 0  # ... all of it transparent
    rgba[10:70, 15:45] = (20, 30, 90, 255)  # an opaque navy garment
    image = predict.preprocess_image(save(tmp_path / "cutout.png", rgba))
    assert_fashion_form(image)
    assert image[14, 14] > 200


def test_palette_image(tmp_path):
    rgb = np.full((90, 70, 3), 255, dtype=np.uint8)
    rgb[10:80, 20:50] = (200, 30, 30)
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)
    path = save(tmp_path / "palette.png", palette)
    assert Image.open(path).mode == "P"
    assert_fashion_form(predict.preprocess_image(path))


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    grey = np.full((90, 60), 60_000, dtype=np.uint16)  # a light background
    grey[10:80, 15:45] = 10_000  # a dark garment ...
    grey[40:80, 15:45] = 30_000  # ... with a lighter lower half
    path = save(tmp_path / "deep.png", grey)
    assert Image.open(path).mode.startswith("I")
    image = predict.preprocess_image(path)
    assert_fashion_form(image)
    assert int(image[6, 14]) - int(image[22, 14]) > 50  # two levels, not one


def test_cmyk_jpeg(tmp_path):
    rgb = np.full((90, 70, 3), 255, dtype=np.uint8)
    rgb[10:80, 20:50] = (30, 30, 120)
    path = save(tmp_path / "print.jpg", Image.fromarray(rgb).convert("CMYK"))
    assert Image.open(path).mode == "CMYK"
    assert_fashion_form(predict.preprocess_image(path))


def test_animated_gif_uses_the_first_frame(tmp_path):
    tall = np.full((90, 90), 255, dtype=np.uint8)
    tall[5:85, 35:55] = 0
    wide = np.full((90, 90), 255, dtype=np.uint8)
    wide[35:55, 5:85] = 0
    frames = [Image.fromarray(tall), Image.fromarray(wide)]
    path = tmp_path / "spin.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(path).n_frames == 2
    top, bottom, left, right = assert_fashion_form(predict.preprocess_image(path))
    assert bottom - top > 2 * (right - left)  # the tall first frame


def test_fashion_mnist_image_comes_back_where_it_was(tmp_path):
    trousers = np.zeros((28, 28), dtype=np.uint8)
    rows, cols = np.mgrid[:28, :28]
    legs = (cols >= 8) & (cols <= 19) & ~((rows >= 9) & (cols >= 13) & (cols <= 14))
    trousers[legs] = (150 + 50 * np.sin(rows / 3) * np.cos(cols / 2))[legs]
    trousers[:, [8, 19]] //= 3  # soft edges
    trousers[2, 10] = 255
    image = predict.preprocess_image(save(tmp_path / "trousers.png", trousers))
    box = object_box(image)
    assert all(abs(a - b) <= 1 for a, b in zip(box, object_box(trousers), strict=True))
    assert np.abs(image.astype(int) - trousers).mean() < 10


@pytest.mark.skipif(not TEST_IMAGES.exists(), reason=f"{TEST_IMAGES} not installed")
def test_real_fashion_mnist_images_keep_their_place(tmp_path):
    raw = gzip.decompress(TEST_IMAGES.read_bytes())
    originals = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:100]
    for index, original in enumerate(originals):
        image = predict.preprocess_image(save(tmp_path / f"{index}.png", original))
        moved = [
            abs(a - b)
            for a, b in zip(object_box(image), object_box(original), strict=True)
        ]
        assert max(moved) <= 2, f"image {index} moved by {moved}"


def write_small(path: Path) -> None:
    save(path, np.full((5, 5), 255, dtype=np.uint8))


def write_blank(path: Path) -> None:
    save(path, np.full((100, 100), 200, dtype=np.uint8))


def write_text(path: Path) -> None:
    path.write_text("not pixels\n")


def write_empty(path: Path) -> None:
    path.write_bytes(b"")


def write_truncated(path: Path) -> None:
    save(path, np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:2000])


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (write_small, "5x5 image too small"),
        (write_blank, "blank"),
        (write_text, "not an image"),
        (write_empty, "not an image"),
        (write_truncated, "cannot read the image"),
        (lambda path: None, "file not found"),
        (lambda path: png_header_only(path, 8000, 7000), "8000x7000 image too large"),
        (lambda path: png_header_only(path, 10_000, 10_000), "too large"),
        (lambda path: png_header_only(path, 20_000, 10_000), "too large"),
    ],
)
def test_bad_image_is_refused_in_one_line_naming_the_file(tmp_path, write, reason):
    path = tmp_path / "photo.png"
    write(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even Pillow's decompression bomb warning
        with pytest.raises(ImageInputError) as error:
            predict.preprocess_image(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert reason in message
    assert "\n" not in message


# --- the model ----------------------------------------------------------------------


def write_metrics(folder: Path, run: str, accuracy: float, fast: bool, model: bool):
    (folder / "metrics").mkdir(parents=True, exist_ok=True)
    (folder / "models").mkdir(exist_ok=True)
    metrics = {"run": run, "val_accuracy": accuracy, "fast": fast}
    metrics["test_accuracy"] = 1 - accuracy  # never the choice
    (folder / "metrics" / f"{run}.json").write_text(json.dumps(metrics))
    if model:
        (folder / "models" / f"{run}.keras").write_bytes(b"")


def test_find_model_picks_the_best_validation_cnn_of_a_full_run(tmp_path):
    write_metrics(tmp_path, "cnn", 0.91, fast=False, model=True)
    write_metrics(tmp_path, "cnn-plus", 0.93, fast=False, model=True)
    write_metrics(tmp_path, "cnn-fast", 0.99, fast=True, model=True)
    write_metrics(tmp_path, "ann", 0.95, fast=False, model=True)
    write_metrics(tmp_path, "cnn-deep", 0.97, fast=False, model=False)
    (tmp_path / "metrics" / "broken.json").write_text("{")
    assert predict.find_model(tmp_path) == tmp_path / "models" / "cnn-plus.keras"


def test_find_model_says_where_it_looked(tmp_path, monkeypatch):
    write_metrics(tmp_path, "cnn", 0.91, fast=True, model=True)
    with pytest.raises(ModelLoadError, match="make run") as error:
        predict.find_model(tmp_path)
    assert str(tmp_path) in str(error.value)
    assert "--model" in str(error.value)
    monkeypatch.setattr(artifacts, "PROJECT_ROOT", tmp_path / "project")
    with pytest.raises(ModelLoadError, match="project/artifacts"):
        predict.find_model()


def test_load_model_checks_the_shapes(model_file, tmp_path):
    model = predict.load_model(model_file)
    assert model.input_shape == (None, 28, 28, 1)
    wrong = tmp_path / "five.keras"
    dense_model(units=5).save(wrong)
    with pytest.raises(ModelLoadError, match="10 out") as error:
        predict.load_model(wrong)
    assert str(wrong) in str(error.value)


def test_a_model_from_a_newer_keras_is_refused_naming_both_versions(
    model_file, tmp_path
):
    # What an older Keras meets in a newer one's file: a setting it does not know.
    with zipfile.ZipFile(model_file) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["layers"][-1]["config"]["setting_of_keras_99"] = None
    files["config.json"] = json.dumps(config).encode()
    metadata = json.loads(files["metadata.json"]) | {"keras_version": "99.0.0"}
    files["metadata.json"] = json.dumps(metadata).encode()
    newer = tmp_path / "newer.keras"
    with zipfile.ZipFile(newer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    assert predict.saved_by(newer) == "99.0.0"
    import keras

    with pytest.raises(ModelLoadError) as error:
        predict.load_model(newer)
    assert str(error.value) == (
        f"{newer}: saved by Keras 99.0.0, which Keras {keras.version()} (the one "
        'installed) cannot read: pip install -U "keras>=99.0.0", or retrain in this '
        "environment"
    )


def test_lambda_layer_is_refused_by_safe_mode(tmp_path):
    path = tmp_path / "lambda.keras"
    dense_model(lambda_layer=True).save(path)
    with pytest.raises(ModelLoadError, match=r"Lambda.*safe_mode") as error:
        predict.load_model(path)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


class SpyModel:
    """Stands in for a Keras model; records each ``predict`` batch."""

    def __init__(self):
        self.batches: list[np.ndarray] = []

    def predict(self, batch: np.ndarray, verbose: int = 0) -> np.ndarray:
        self.batches.append(batch)
        probabilities = np.linspace(1, 10, 10, dtype=np.float32)  # "Ankle boot" top
        return np.tile(probabilities / probabilities.sum(), (len(batch), 1))


def test_predict_images_batches_good_images_and_reports_bad_ones(tmp_path):
    good = save(tmp_path / "shirt.png", shirt_on(255, 0))
    other = save(tmp_path / "tall.png", shirt_on(0, 200, size=(200, 90)))
    bad = tmp_path / "missing.png"
    model = SpyModel()
    results = predict.predict_images([good, bad, other], model=model, top_k=2)
    assert [r.source for r in results] == [str(good), str(bad), str(other)]
    assert len(model.batches) == 1  # one predict call for all good images
    (batch,) = model.batches
    assert batch.shape == (2, 28, 28, 1)
    assert batch.dtype == np.float32
    assert batch.max() > 1  # raw 0-255 pixels: the model rescales
    assert results[1].error == f"{bad}: file not found"
    assert results[1].top_k == ()
    assert [name for name, _ in results[0].top_k] == ["Ankle boot", "Bag"]
    assert results[0].error is None
    assert json.loads(json.dumps(results[0].to_dict()))["top_k"][0]["class"] == (
        "Ankle boot"
    )


def test_predict_images_with_a_saved_model(model_file, tmp_path):
    image = save(tmp_path / "shirt.png", shirt_on(255, 0))
    (result,) = predict.predict_images([image], model=model_file, top_k=10)
    names = [name for name, _ in result.top_k]
    probabilities = [p for _, p in result.top_k]
    assert sorted(names) == sorted(CLASS_NAMES)
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1, abs=1e-4)


# --- command line -------------------------------------------------------------------


def test_cli_prints_one_line_per_image_and_reports_bad_ones(model_file, tmp_path):
    save(tmp_path / "shirt.png", shirt_on(255, 0))
    save(tmp_path / "boot.png", shirt_on(0, 220, size=(100, 160)))
    (tmp_path / "notes.png").write_text("hello")
    args = ["shirt.png", "notes.png", "boot.png", "--model", model_file, "--top-k", 2]
    done = run_cli(tmp_path, *args)
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["shirt.png", "boot.png"]
    assert all(line.count("%") == 2 for line in lines)
    assert done.stderr.splitlines() == [
        "error: notes.png: not an image (Pillow cannot identify it)"
    ]


def test_cli_on_the_shipped_samples_prints_only_their_results(model_file, tmp_path):
    samples = sorted((PROJECT_ROOT / "samples").glob("*.png"))
    assert len(samples) >= 3
    done = run_cli(tmp_path, *samples, "--model", model_file)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no TensorFlow start-up line, no warning
    assert [line.split(": ")[0] for line in done.stdout.splitlines()] == [
        str(sample) for sample in samples
    ]


def test_cli_json_output_parses(model_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "shirt.png", shirt_on(255, 0))
    (tmp_path / "notes.png").write_text("hello")
    args = ["shirt.png", "notes.png", "--json", "--model", str(model_file)]
    assert predict.main(args) == 2
    out, err = capsys.readouterr()
    good, bad = json.loads(out)
    assert good["source"] == "shirt.png"
    assert good["error"] is None
    assert len(good["top_k"]) == 3
    assert set(good["top_k"][0]) == {"class", "probability"}
    assert bad == {"source": "notes.png", "top_k": [], "error": bad["error"]}
    assert err == f"error: {bad['error']}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["shirt.png", "--top-k", "0"], "argument --top-k: invalid choice: 0"),
        (["shirt.png", "--output-dir", "empty"], "empty (metrics/*.json"),
    ],
)
def test_cli_usage_and_model_errors_are_one_line(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    done = run_cli(tmp_path, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ")
    assert message in line
