"""Predict: Fashion-MNIST-form preprocessing, the default model, and every bad input.

The models are untrained and seeded: the tests check the plumbing and the
preprocessing, not the accuracy. Nothing here trains.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import needs_real_data
from PIL import Image

from helpers import artifacts, predict
from helpers.data import CLASS_NAMES, load_fashion_mnist
from helpers.models import build_ann, build_cnn

PROJECT_ROOT = Path(__file__).resolve().parents[1]


# --- builders -----------------------------------------------------------------------


def rectangle_on(background: int, fill: int, height: int, width: int) -> np.ndarray:
    """A uint8 (100, 100) canvas of ``background`` with an off-centre rectangle."""
    canvas = np.full((100, 100), background, dtype=np.uint8)
    canvas[10 : 10 + height, 55 : 55 + width] = fill
    return canvas


def garment_on_white() -> np.ndarray:
    """A uint8 (60, 50) grey 'shirt': dark body and sleeves on a white background."""
    canvas = np.full((60, 50), 255, dtype=np.uint8)
    canvas[10:55, 15:35] = 40  # body
    canvas[10:25, 5:45] = 90  # sleeves
    canvas[30:40, 20:30] = 150  # a lighter print
    return canvas


def save_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` but holds no real pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + png_chunk(b"IEND", b"")
    )
    return path


def object_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels at or above the trim threshold."""
    rows, cols = np.nonzero(image >= predict.TRIM_THRESHOLD)
    return rows.min(), rows.max(), cols.min(), cols.max()


def run_cli(capsys, *args: str | os.PathLike) -> tuple[int, list[dict], list[str]]:
    """Run ``main`` and return (exit code, JSON lines of stdout, stderr lines)."""
    code = predict.main([os.fspath(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err.splitlines()


# --- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn_path(tmp_path_factory) -> Path:
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("models") / "cnn.keras"
    build_cnn("baseline").save(path)
    return path


@pytest.fixture(scope="module")
def cnn(cnn_path):
    return keras.saving.load_model(cnn_path, compile=False, safe_mode=True)


@pytest.fixture
def good_png(tmp_path) -> Path:
    return save_png(tmp_path / "shirt.png", garment_on_white())


# --- preprocessing ------------------------------------------------------------------


def test_dark_rectangle_on_white_is_inverted_trimmed_and_centred_keeping_aspect():
    image = predict.preprocess_image(rectangle_on(255, 0, height=40, width=20))

    assert image.shape == (28, 28)
    assert image.dtype == np.uint8
    assert object_box(image) == (0, 27, 7, 20)  # 28 tall, 14 wide, centred
    assert (image[:, 7:21] == 255).all()
    assert (image[:, :7] == 0).all()
    assert (image[:, 21:] == 0).all()


def test_light_rectangle_on_black_is_not_inverted():
    dark_on_light = predict.preprocess_image(rectangle_on(255, 0, 40, 20))
    light_on_dark = predict.preprocess_image(rectangle_on(0, 255, 40, 20))

    np.testing.assert_array_equal(light_on_dark, dark_on_light)


def test_wide_object_is_fitted_to_28_wide_and_centred_vertically():
    image = predict.preprocess_image(rectangle_on(255, 0, height=11, width=44))

    # 7 tall (11 * 28 / 44), 28 wide; the odd margin's extra row goes on top, as in
    # Fashion-MNIST
    assert object_box(image) == (11, 17, 0, 27)


def test_grey_background_becomes_black():
    image = predict.preprocess_image(rectangle_on(200, 20, 40, 20))

    assert object_box(image) == (0, 27, 7, 20)
    assert image[:, :7].max() == 0  # background 200 -> 0
    assert image[5:-5, 9:19].min() == 230  # (255 - 20 - 55) * 255 / 200


def test_colour_image_gives_the_same_result_as_its_greyscale_version(tmp_path):
    rng = np.random.default_rng(0)
    colour = np.full((60, 50, 3), 255, dtype=np.uint8)
    colour[10:55, 15:35] = rng.integers(0, 200, (45, 20, 3), dtype=np.uint8)
    colour_png = save_png(tmp_path / "colour.png", colour)
    grey_png = tmp_path / "grey.png"
    Image.open(colour_png).convert("L").save(grey_png)

    from_colour = predict.preprocess_image(colour_png)

    np.testing.assert_array_equal(from_colour, predict.preprocess_image(grey_png))
    assert from_colour.max() > 100  # not blank


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda g: Image.fromarray(g.astype(np.uint16) * 257), id="16-bit"),
        pytest.param(lambda g: Image.fromarray(g).convert("RGB"), id="RGB"),
        pytest.param(
            lambda g: Image.fromarray(g).convert("P", palette=Image.Palette.ADAPTIVE),
            id="palette",
        ),
        pytest.param(lambda g: Image.fromarray(g).convert("RGBA"), id="opaque-RGBA"),
    ],
)
def test_other_modes_give_the_8_bit_greyscale_result(tmp_path, convert):
    grey = garment_on_white()
    path = tmp_path / "image.png"
    convert(grey).save(path)

    np.testing.assert_array_equal(
        predict.preprocess_image(path), predict.preprocess_image(grey)
    )


@pytest.mark.parametrize("hidden_colour", [0, 255])
def test_transparent_background_counts_as_background(tmp_path, hidden_colour):
    grey = garment_on_white()
    rgba = np.zeros((*grey.shape, 4), dtype=np.uint8)
    rgba[..., :3] = np.where(grey == 255, hidden_colour, grey)[..., None]
    rgba[..., 3] = np.where(grey == 255, 0, 255)
    path = save_png(tmp_path / "cutout.png", rgba)

    np.testing.assert_array_equal(
        predict.preprocess_image(path), predict.preprocess_image(grey)
    )


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored tall, shown rotated a quarter turn: wide
    path = tmp_path / "rotated.png"
    Image.fromarray(rectangle_on(255, 0, height=40, width=20)).save(path, exif=exif)

    assert object_box(predict.preprocess_image(path)) == (7, 20, 0, 27)


@needs_real_data
@pytest.mark.parametrize("inverted", [False, True], ids=["as-is", "inverted-rgb"])
def test_fashion_mnist_images_survive_a_png_round_trip(tmp_path, inverted):
    (_, _), (x_test, _) = load_fashion_mnist()
    for index, original in enumerate(x_test[:10]):
        pixels = 255 - original if inverted else original
        path = tmp_path / f"{index}.png"
        Image.fromarray(pixels).convert("RGB").save(path)

        image = predict.preprocess_image(path)

        difference = np.abs(image.astype(int) - original.astype(int))
        assert difference.mean() < 1.0, f"test image {index}"


def test_uniform_image_is_an_error_not_a_crash(tmp_path, good_png, cnn_path, capsys):
    blank = save_png(tmp_path / "blank.png", np.full((50, 50), 128, dtype=np.uint8))

    code, lines, errors = run_cli(
        capsys, blank, good_png, "--model", cnn_path, "--json"
    )

    assert code == 2
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {blank}: no object found")
    assert lines[0] == {"file": str(blank), "error": lines[0]["error"]}
    assert len(lines[1]["predictions"]) == 3


# --- bad images: one-line error naming the file, the others still predicted -------


def write_missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.png"


def write_text(tmp_path: Path) -> Path:
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    return path


def write_empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    return path


def write_one_pixel(tmp_path: Path) -> Path:
    return save_png(tmp_path / "dot.png", np.zeros((1, 1), dtype=np.uint8))


def write_56_megapixels(tmp_path: Path) -> Path:
    return png_header_only(tmp_path / "huge.png", 8000, 7000)


def write_900_megapixels(tmp_path: Path) -> Path:  # past Pillow's own bomb limit
    return png_header_only(tmp_path / "bomb.png", 30000, 30000)


def write_truncated(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    good = save_png(tmp_path / "full.png", rng.integers(0, 256, (64, 64), np.uint8))
    path = tmp_path / "truncated.png"
    path.write_bytes(good.read_bytes()[:2000])
    return path


@pytest.mark.parametrize(
    ("write_bad", "reason"),
    [
        (write_missing, "file not found"),
        (write_text, "not a supported image"),
        (write_empty, "empty file"),
        (write_one_pixel, "too small"),
        (write_56_megapixels, "too large"),
        (write_900_megapixels, "too large"),
        (write_truncated, "cannot decode"),
    ],
)
def test_bad_image_names_the_file_and_the_others_are_predicted(
    tmp_path, good_png, cnn_path, capsys, write_bad, reason
):
    bad = write_bad(tmp_path)

    code, lines, errors = run_cli(capsys, good_png, bad, "--model", cnn_path, "--json")

    assert code == 2
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"error: {bad}: ")
    assert reason in errors[0].removeprefix(f"error: {bad}: ")
    assert lines[0]["file"] == str(good_png)
    assert len(lines[0]["predictions"]) == 3
    assert lines[1]["file"] == str(bad)
    assert reason in lines[1]["error"]


def test_too_large_image_is_refused_before_decoding(tmp_path):
    # The header claims 56 MP over 16 bytes of pixel data: decoding would fail
    # differently, so the size must have been checked first.
    with pytest.raises(predict.ImageInputError, match=r"8000x7000 = 56\.0 megapix"):
        predict.preprocess_image(write_56_megapixels(tmp_path))


# --- bad models ---------------------------------------------------------------------


def write_text_model(tmp_path: Path) -> Path:
    path = tmp_path / "model.keras"
    path.write_text("not a model")
    return path


def write_zip_model(tmp_path: Path) -> Path:
    path = tmp_path / "junk.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{not json")
    return path


def write_lambda_model(tmp_path: Path) -> Path:
    """A Fashion-MNIST-shaped model holding Python code: only unsafe loading runs it."""
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Lambda(lambda t: t * 2.0),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    path = tmp_path / "lambda.keras"
    model.save(path)
    return path


def write_wrong_shape_model(tmp_path: Path) -> Path:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10)])
    path = tmp_path / "tabular.keras"
    model.save(path)
    return path


@pytest.mark.parametrize(
    ("write_model", "reason"),
    [
        (lambda tmp_path: tmp_path / "absent.keras", "model file not found"),
        (write_text_model, "not a Keras model"),
        (write_zip_model, "not a loadable Keras model"),
        (write_lambda_model, "not a loadable Keras model"),  # refused by safe mode
        (write_wrong_shape_model, "not a Fashion-MNIST model"),
    ],
)
def test_bad_model_is_a_one_line_error_naming_the_file(
    tmp_path, good_png, capsys, write_model, reason
):
    model_path = write_model(tmp_path)

    code, lines, errors = run_cli(capsys, good_png, "--model", model_path)

    assert code == 2
    assert lines == []
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"error: {model_path}: ")
    assert reason in errors[0].removeprefix(f"error: {model_path}: ")


def test_safe_mode_refuses_a_lambda_layer(tmp_path):
    with pytest.raises(predict.ModelLoadError, match="deserialization of a `Lambda`"):
        predict.load_model(write_lambda_model(tmp_path))


# --- the default model --------------------------------------------------------------


def write_run(output_dir: Path, run: str, model: str, accuracy: float) -> None:
    metrics = {"run": run, "model": model, "variant": "x", "test_accuracy": accuracy}
    artifacts.write_json(
        artifacts.artifact_path(output_dir, "metrics", f"{run}.json"), metrics
    )


def test_default_model_is_the_best_cnn_of_the_run(tmp_path, good_png, cnn_path, capsys):
    write_run(tmp_path, "ann-dropout", "ann", 0.99)
    write_run(tmp_path, "cnn-baseline", "cnn", 0.89)
    write_run(tmp_path, "cnn-dropout", "cnn", 0.91)
    write_run(tmp_path, "cnn-wide", "cnn", 0.90)
    best = artifacts.artifact_path(tmp_path, "models", "cnn-dropout.keras")
    best.write_bytes(cnn_path.read_bytes())  # the only model file present

    assert predict.find_best_cnn(tmp_path) == best
    code, lines, errors = run_cli(capsys, good_png, "--output-dir", tmp_path, "--json")
    assert (code, errors) == (0, [])
    assert len(lines[0]["predictions"]) == 3


def test_no_cnn_run_says_to_run_make_run(tmp_path, good_png, capsys):
    write_run(tmp_path, "ann-baseline", "ann", 0.88)

    code, lines, errors = run_cli(capsys, good_png, "--output-dir", tmp_path)

    assert (code, lines) == (2, [])
    assert len(errors) == 1
    assert "make run" in errors[0]
    assert "--model" in errors[0]


# --- predictions --------------------------------------------------------------------


def test_cnn_sees_the_preprocessed_image_scaled_to_unit_range(cnn, good_png):
    (result,) = predict.predict_images([good_png], model=cnn, top_k=10)
    expected = cnn.predict(result.image[None, :, :, None] / 255.0, verbose=0)[0]

    assert result.ok
    assert result.image.shape == (28, 28)
    assert result.image.dtype == np.uint8
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-5, atol=1e-6)
    probabilities = [p for _, p in result.top_k]
    assert probabilities == sorted(probabilities, reverse=True)
    assert {name for name, _ in result.top_k} == set(CLASS_NAMES)


def test_ann_model_gets_flattened_input(tmp_path, good_png):
    keras.utils.set_random_seed(0)
    ann = build_ann("baseline")
    (result,) = predict.predict_images(good_png, model=ann, top_k=2)
    expected = ann.predict(result.image.reshape(1, 784) / 255.0, verbose=0)[0]

    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-5, atol=1e-6)
    assert len(result.top_k) == 2


def test_paths_bytes_and_arrays_give_the_same_prediction(cnn, good_png):
    grey = garment_on_white()

    results = predict.predict_images(
        [good_png, good_png.read_bytes(), grey, grey / 255.0], model=cnn
    )

    assert [r.source for r in results] == [
        str(good_png),
        "<bytes 1>",
        "<ndarray 2>",
        "<ndarray 3>",
    ]
    for result in results[1:]:
        np.testing.assert_array_equal(result.image, results[0].image)
        assert [name for name, _ in result.top_k] == [
            name for name, _ in results[0].top_k
        ]


@pytest.mark.parametrize("top_k", [0, 11])
def test_top_k_out_of_range_is_rejected(cnn, good_png, top_k):
    with pytest.raises(ValueError, match="top_k"):
        predict.predict_images([good_png], model=cnn, top_k=top_k)


def test_text_output_shows_top_k_classes_with_percentages(good_png, cnn_path, capsys):
    code = predict.main([str(good_png), "--model", str(cnn_path), "--top-k", "2"])
    out = capsys.readouterr().out.strip()

    assert code == 0
    assert out.startswith(f"{good_png}: ")
    assert out.count("%") == 2


def test_cli_json_prints_one_json_object_per_image(tmp_path, good_png, cnn_path):
    other = save_png(tmp_path / "trousers.png", rectangle_on(255, 30, 60, 25))
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.predict",
            good_png,
            other,
            "--json",
            "--model",
            cnn_path,
            "--top-k",
            "4",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    records = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(good_png), str(other)]
    for record in records:
        assert [p["class"] in CLASS_NAMES for p in record["predictions"]] == [True] * 4
        probabilities = [p["probability"] for p in record["predictions"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-6


def test_cli_loads_a_model_with_the_bundles_custom_layers(tmp_path, good_png):
    # cnn-plus uses RandomHorizontalFlip / RandomErasing: a fresh process must know
    # them without the caller importing helpers.models first.
    from helpers import models

    path = tmp_path / "plus.keras"
    models.build_cnn("plus").save(path)
    completed = subprocess.run(
        [sys.executable, "-m", "helpers.predict", good_png, "--model", path],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert str(good_png) in completed.stdout
