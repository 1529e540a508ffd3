"""Find, verify and parse the Fashion-MNIST IDX files (a bad one raises DatasetError
naming it and the fix, never a download over it); split them 50k/10k/10k."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from helpers import parameters

_NAMES = "T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot"
CLASS_NAMES: tuple[str, ...] = tuple(_NAMES.split("|"))  # in label order 0-9
NUM_CLASSES = len(CLASS_NAMES)
# Training-set pixel mean and sd on the [0, 1] scale as quoted (01_eda measures them)
REFERENCE_MEAN = 0.2860
REFERENCE_STD = 0.3530

PUBLISHED_FILE = Path(__file__).with_name("published.csv")  # typed once, with sources

DEFAULT_VAL_SIZE = 10_000  # of the 60,000 official training images
FAST_SIZES = (2_000, 500, 500)  # fast (CI) mode: train, validation and test images

ENV_VAR = "FASHION_MNIST_DIR"
SYSTEM_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_HINT = "sudo apt-get install dataset-fashion-mnist"
TrainTest = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class IdxSpec:
    """One IDX file: name without ``.gz``, array shape, SHA-256 of its content."""

    name: str
    shape: tuple[int, ...]
    sha256: str

    @property
    def size(self) -> int:
        return 4 + 4 * len(self.shape) + int(np.prod(self.shape))  # magic, dims, data


_SHA256 = {  # of the decompressed files (DESIGN.md), x_train, y_train, x_test, y_test
    "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_SHAPES = ((60000, 28, 28), (60000,), (10000, 28, 28), (10000,))
FASHION_MNIST_FILES: tuple[IdxSpec, ...] = tuple(
    IdxSpec(f"{key}-idx{len(shape)}-ubyte", shape, sha256)
    for (key, sha256), shape in zip(_SHA256.items(), _SHAPES, strict=True)
)


class DatasetError(RuntimeError):
    """A Fashion-MNIST file is missing, truncated, altered or malformed."""


def published() -> pd.DataFrame:
    """Return ``published.csv`` by recipe: test accuracy, split, our run, source and
    the recipe it is a reading of (``reading_of``, else itself); a reading's figure,
    split and source are its recipe's, typed once."""
    table = pd.read_csv(PUBLISHED_FILE, index_col="recipe", keep_default_na=False)
    table["reading_of"] = table["reading_of"].where(
        table["reading_of"] != "", table.index
    )
    inherited = ["published_accuracy", "own_split", "source"]
    table[inherited] = table.loc[table["reading_of"], inherited].to_numpy()
    return table.astype({"published_accuracy": float})


def _bad(folder: Path, problem: str) -> DatasetError:
    return DatasetError(
        f"{problem}. Fix: put good copies in {folder} (`{APT_HINT}` installs them in "
        f"{SYSTEM_DATA_DIR}), or point {ENV_VAR} or data_dir at a folder holding them."
    )


def keras_cache_dir() -> Path:
    """Return the folder where ``keras.datasets.fashion_mnist`` caches its files."""
    keras_home = Path(os.getenv("KERAS_HOME", Path.home() / ".keras"))
    return keras_home / "datasets" / "fashion-mnist"


def find_idx_file(folder: Path, spec: IdxSpec) -> Path | None:
    """Return ``folder/<name>.gz`` or ``folder/<name>``, whichever exists first."""
    candidates = (folder / f"{spec.name}.gz", folder / spec.name)
    return next((path for path in candidates if path.is_file()), None)


def read_idx(path: str | os.PathLike, spec: IdxSpec) -> np.ndarray:
    """Return one IDX file (plain or gzip) as uint8 of ``spec.shape``; raise
    DatasetError if it is damaged, truncated, not this IDX file or altered."""
    path = Path(path)
    where, raw = f"{path.name} in {path.parent}", path.read_bytes()
    try:
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (EOFError, OSError, zlib.error) as err:
        raise _bad(path.parent, f"{where} is a damaged gzip file ({err})") from err
    header = np.array([0x800 + len(spec.shape), *spec.shape], ">u4").tobytes()
    if len(data) >= len(header) and not data.startswith(header):
        problem = (
            f"starts 0x{data[: len(header)].hex()}, expected 0x{header.hex()} (magic "
            f"number and dimensions {spec.shape}): not this IDX file"
        )
    elif len(data) != spec.size:
        state = "truncated" if len(data) < spec.size else "too long"
        problem = f"is {state}: {len(data)} bytes, expected {spec.size}"
    elif (digest := hashlib.sha256(data).hexdigest()) != spec.sha256:
        problem = f"has been altered: SHA-256 {digest}, expected {spec.sha256}"
    else:
        return np.frombuffer(data, np.uint8, offset=len(header)).reshape(spec.shape)
    raise _bad(path.parent, f"{where} {problem}")


def _load_folder(folder: Path) -> TrainTest:
    found = [find_idx_file(folder, spec) for spec in FASHION_MNIST_FILES]
    if None in found:
        name = FASHION_MNIST_FILES[found.index(None)].name
        holds = "other Fashion-MNIST files" if any(found) else "none of the four"
        raise _bad(folder, f"{name}(.gz) is missing from {folder}, which holds {holds}")
    x_train, y_train, x_test, y_test = map(read_idx, found, FASHION_MNIST_FILES)
    return (x_train, y_train), (x_test, y_test)


def _download_with_keras() -> TrainTest:
    import keras  # here: TensorFlow takes seconds to import and the download is rare

    try:
        keras.datasets.fashion_mnist.load_data()
    except Exception as err:  # any download failure gets the same fix
        raise DatasetError(
            f"Fashion-MNIST is in neither {keras_cache_dir()} nor {SYSTEM_DATA_DIR} "
            f"and the Keras download failed ({type(err).__name__}: {err}). Fix: "
            f"`{APT_HINT}`, or set {ENV_VAR} to a folder holding the four IDX files."
        ) from err
    return _load_folder(keras_cache_dir())  # verify what was downloaded


def load_fashion_mnist(data_dir: str | os.PathLike | None = None) -> TrainTest:
    """Return ``(x_train, y_train), (x_test, y_test)``, uint8 as from Keras, verified,
    from ``data_dir`` or ``$FASHION_MNIST_DIR``, else the Keras cache or the Debian
    folder if one holds a file, else a Keras download. Raises DatasetError if bad."""
    if not isinstance(data_dir, str | os.PathLike | None) or not str(data_dir).strip():
        raise DatasetError(
            f"data_dir={data_dir!r} is not a folder path. Fix: pass None or the path "
            "of a folder holding the four IDX files."
        )
    given = [(data_dir, "data_dir"), (os.environ.get(ENV_VAR) or None, ENV_VAR)]
    places = [(Path(d).expanduser(), by) for d, by in given if d is not None]
    places += [(keras_cache_dir(), None), (SYSTEM_DATA_DIR, None)]  # the defaults
    for folder, given_by in places:
        if given_by and not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise DatasetError(
                f"Fashion-MNIST folder {folder} ({given_by}) {what}. Fix: pass a "
                f"folder holding the four IDX files, unset {ENV_VAR}, or `{APT_HINT}`."
            )
        if given_by or any(find_idx_file(folder, s) for s in FASHION_MNIST_FILES):
            return _load_folder(folder)
    return _download_with_keras()


@dataclass(frozen=True)
class Splits:
    """Train/validation/test arrays: uint8 images (n, 28, 28), uint8 labels (n,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def sizes(self) -> dict[str, int]:
        """Return the number of images in each split."""
        return {k: len(getattr(self, f"y_{k}")) for k in ("train", "val", "test")}

    def subset(self, n_train: int, n_val: int, n_test: int) -> Splits:
        """Return the first ``n_train``, ``n_val`` and ``n_test`` images."""
        sizes = (n_train, n_train, n_val, n_val, n_test, n_test)  # in field order
        return Splits(*(a[:n] for a, n in zip(vars(self).values(), sizes, strict=True)))


def _check_val_size(val_size: object, n: int, stratify: bool) -> None:
    low = NUM_CLASSES if stratify else 1
    parameters.check_int("val_size", val_size, low, n - low)


def split_indices(
    y: np.ndarray, val_size: int, seed: int | None = 42, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted, disjoint ``(train_idx, val_idx)`` covering ``y``: ``val_size``
    validation images, stratified unless ``stratify`` is off (then ``seed=None``
    takes the last ones, the common Keras recipe); a bad ``val_size``: ValueError."""
    _check_val_size(val_size, len(y), stratify)
    indices = np.arange(len(y))
    if not stratify and seed is None:
        return indices[: len(y) - val_size], indices[len(y) - val_size :]
    train_idx, val_idx = train_test_split(
        indices, test_size=val_size, random_state=seed, stratify=y if stratify else None
    )
    return np.sort(train_idx), np.sort(val_idx)


def load_splits(
    data_dir: str | os.PathLike | None = None,
    seed: int | None = 42,
    fast: bool = False,
    val_size: int = DEFAULT_VAL_SIZE,
    stratify: bool = True,
) -> Splits:
    """Return :func:`load_fashion_mnist` as :class:`Splits`: validation images drawn
    from the training ones by :func:`split_indices`, the test set untouched, ``fast``
    the first :data:`FAST_SIZES`. Bad arguments raise ValueError before any loading."""
    parameters.check_bool("fast", fast)
    parameters.check_bool("stratify", stratify)
    if seed is not None:
        parameters.check_int("seed", seed, 0, 2**32 - 1)
    _check_val_size(val_size, FASHION_MNIST_FILES[1].shape[0], stratify)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(data_dir)
    indices = split_indices(y_train, val_size, seed=seed, stratify=stratify)
    xy = (a[i] for i in indices for a in (x_train, y_train))  # train, then validation
    splits = Splits(*xy, x_test, y_test)
    return splits.subset(*FAST_SIZES) if fast else splits


def to_dataset(
    x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None
):
    """Return ``tf.data.Dataset`` batches ``(x, y)`` (x uint8 (n, 28, 28, 1), y (n,) or
    one-hot), reshuffled per epoch given ``shuffle_seed``; autotuning off (02_ann)."""
    import tensorflow as tf  # here: the loader itself needs no TensorFlow

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(x), seed=shuffle_seed)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.batch(batch_size).prefetch(2).with_options(options)
