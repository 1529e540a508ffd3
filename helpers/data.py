"""Find, verify and parse the Fashion-MNIST IDX files; split them 50k/10k/10k.

The loader never downloads over a file it found: a missing, truncated, altered or
malformed file raises :class:`DatasetError` naming the file, the folder it was read
from and the fix. Only when no known place holds any of the files does it fall back
to the Keras downloader.
"""

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
# Training-set pixel mean and standard deviation on the [0, 1] scale, as the
# literature quotes them (01_eda measures them again).
REFERENCE_MEAN = 0.2860
REFERENCE_STD = 0.3530

# Published test accuracies of the recipes replicated here, with their sources: the
# one place they are typed.
PUBLISHED_FILE = Path(__file__).with_name("published.csv")

DEFAULT_VAL_SIZE = 10_000  # of the 60,000 official training images
FAST_SIZES = (2_000, 500, 500)  # fast (CI) mode: train, validation and test images

ENV_VAR = "FASHION_MNIST_DIR"
SYSTEM_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_HINT = "sudo apt-get install dataset-fashion-mnist"


@dataclass(frozen=True)
class IdxSpec:
    """One IDX file: name without ``.gz``, array shape, SHA-256 of its content."""

    name: str
    shape: tuple[int, ...]
    sha256: str

    @property
    def size(self) -> int:
        """Decompressed size in bytes: 4-byte magic, 4 bytes per dim, then data."""
        return 4 + 4 * len(self.shape) + int(np.prod(self.shape))


# The four files in (x_train, y_train, x_test, y_test) order; checksums from DESIGN.md.
FASHION_MNIST_FILES: tuple[IdxSpec, ...] = (
    IdxSpec(
        "train-images-idx3-ubyte",
        (60000, 28, 28),
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    IdxSpec(
        "train-labels-idx1-ubyte",
        (60000,),
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    IdxSpec(
        "t10k-images-idx3-ubyte",
        (10000, 28, 28),
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    IdxSpec(
        "t10k-labels-idx1-ubyte",
        (10000,),
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
)


class DatasetError(RuntimeError):
    """A Fashion-MNIST file is missing, truncated, altered or malformed."""


def published() -> pd.DataFrame:
    """Return the published figures by recipe (``helpers/published.csv``): test
    accuracy, the recipe's own split, our run of the same network, the source."""
    return pd.read_csv(PUBLISHED_FILE, index_col="recipe", keep_default_na=False)


def _fix_hint(folder: Path) -> str:
    return (
        f"Fix: replace the files in {folder} with good copies "
        f"(`{APT_HINT}` installs them in {SYSTEM_DATA_DIR}), or point "
        f"{ENV_VAR} or data_dir at a folder holding the four files."
    )


def keras_cache_dir() -> Path:
    """Return the folder where ``keras.datasets.fashion_mnist`` caches its files."""
    keras_home = os.environ.get("KERAS_HOME", str(Path.home() / ".keras"))
    return Path(keras_home) / "datasets" / "fashion-mnist"


def candidate_dirs(
    data_dir: str | os.PathLike | None = None,
) -> list[tuple[Path, str | None]]:
    """Return ``(folder, given_by)`` pairs in search order: ``data_dir``,
    ``$FASHION_MNIST_DIR``, the Keras cache, the Debian package's folder.
    ``given_by`` names the argument or variable that chose an explicit folder,
    which must hold the files; it is None for the default places."""
    dirs: list[tuple[Path, str | None]] = []
    if data_dir is not None:
        dirs.append((Path(data_dir).expanduser(), "data_dir"))
    if os.environ.get(ENV_VAR):
        dirs.append((Path(os.environ[ENV_VAR]).expanduser(), ENV_VAR))
    dirs.append((keras_cache_dir(), None))
    dirs.append((SYSTEM_DATA_DIR, None))
    return dirs


def find_idx_file(folder: Path, spec: IdxSpec) -> Path | None:
    """Return ``folder/<name>.gz`` or ``folder/<name>``, whichever exists first."""
    candidates = (folder / f"{spec.name}.gz", folder / spec.name)
    return next((path for path in candidates if path.is_file()), None)


def _read_decompressed(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # not gzip: a plain IDX file
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise DatasetError(
            f"{path.name} in {path.parent} is a damaged gzip file ({err}). "
            + _fix_hint(path.parent)
        ) from err


def read_idx(path: str | os.PathLike, spec: IdxSpec) -> np.ndarray:
    """Return one IDX file (plain or gzip) as uint8 of ``spec.shape``; raise
    DatasetError if it is damaged, truncated, not this IDX file (magic number and
    dimensions) or its SHA-256 differs."""
    path = Path(path)
    where, fix = f"{path.name} in {path.parent}", _fix_hint(path.parent)
    data = _read_decompressed(path)
    header = bytes([0, 0, 0x08, len(spec.shape)])  # magic: unsigned bytes, ndim
    header += b"".join(int(d).to_bytes(4, "big") for d in spec.shape)
    if len(data) >= len(header) and data[: len(header)] != header:
        raise DatasetError(
            f"{where} starts 0x{data[: len(header)].hex()}, expected 0x{header.hex()} "
            f"(magic number and dimensions {spec.shape}): not this IDX file. {fix}"
        )
    if len(data) != spec.size:
        state = "truncated" if len(data) < spec.size else "too long"
        raise DatasetError(
            f"{where} is {state}: {len(data)} bytes, expected {spec.size}. {fix}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise DatasetError(
            f"{where} has been altered: SHA-256 {digest}, expected {spec.sha256}. {fix}"
        )
    return np.frombuffer(data, np.uint8, offset=len(header)).reshape(spec.shape)


def _load_folder(folder: Path) -> tuple[np.ndarray, ...]:
    arrays = []
    found = [find_idx_file(folder, spec) for spec in FASHION_MNIST_FILES]
    for spec, path in zip(FASHION_MNIST_FILES, found, strict=True):
        if path is None:
            holds = "other Fashion-MNIST files" if any(found) else "none of the four"
            raise DatasetError(
                f"{spec.name}(.gz) is missing from {folder}, which holds {holds}. "
                + _fix_hint(folder)
            )
        arrays.append(read_idx(path, spec))
    return tuple(arrays)


def _download_with_keras() -> tuple[np.ndarray, ...]:
    # Imported here: TensorFlow takes seconds to import and the download is rare.
    import keras

    try:
        keras.datasets.fashion_mnist.load_data()
    except Exception as err:  # any download failure gets the same fix
        raise DatasetError(
            "Fashion-MNIST was not found locally and the Keras download failed "
            f"({type(err).__name__}: {err}). Searched: "
            + ", ".join(str(d) for d, _ in candidate_dirs())
            + f". Fix: `{APT_HINT}`, or set {ENV_VAR} to a folder holding the "
            "four IDX files."
        ) from err
    return _load_folder(keras_cache_dir())  # verify what was downloaded


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``(x_train, y_train), (x_test, y_test)`` as Keras' own loader does
    (uint8), verified, from the first folder of :func:`candidate_dirs` holding any
    of the four files (``.gz`` or plain); download through Keras only when none
    does. Raises DatasetError for a missing, damaged or altered file, or a
    ``data_dir`` or ``$FASHION_MNIST_DIR`` that is not a folder."""
    if data_dir is not None and (
        not isinstance(data_dir, str | os.PathLike) or not str(data_dir).strip()
    ):
        raise DatasetError(
            f"data_dir={data_dir!r} is not a folder path. Fix: pass None or the path "
            "of a folder holding the four IDX files."
        )
    for folder, given_by in candidate_dirs(data_dir):
        if given_by and not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise DatasetError(
                f"Fashion-MNIST folder {folder} ({given_by}) {what}. Fix: pass a "
                f"folder holding the four IDX files, unset {ENV_VAR}, or `{APT_HINT}`."
            )
        found = any(find_idx_file(folder, s) for s in FASHION_MNIST_FILES)
        if found or given_by:
            x_train, y_train, x_test, y_test = _load_folder(folder)
            return (x_train, y_train), (x_test, y_test)
    x_train, y_train, x_test, y_test = _download_with_keras()
    return (x_train, y_train), (x_test, y_test)


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
    """Return sorted, disjoint ``(train_idx, val_idx)`` covering the labels ``y``:
    ``val_size`` validation images, stratified by class unless ``stratify`` is off
    (then ``seed=None`` takes the last ``val_size``, the common Keras recipe).
    Raises ValueError when ``val_size`` is not an int in the allowed range."""
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
    """Load Fashion-MNIST and split it 50k train / 10k validation / 10k test.

    The validation set is drawn from the 60,000 official training images
    (stratified: 1,000 per class by default); the official 10,000 test images are
    the test set, untouched.

    ``data_dir`` goes to :func:`load_fashion_mnist`; the same ``seed`` gives the
    same split; ``fast`` keeps the first :data:`FAST_SIZES` images of each split
    (CI); ``stratify`` keeps the class balance. Returns a frozen :class:`Splits`.
    Bad arguments raise ValueError, before any file is read.
    """
    parameters.check_bool("fast", fast)
    parameters.check_bool("stratify", stratify)
    if seed is not None:
        parameters.check_int("seed", seed, 0, 2**32 - 1)
    _check_val_size(val_size, FASHION_MNIST_FILES[1].shape[0], stratify)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(data_dir)
    train_idx, val_idx = split_indices(y_train, val_size, seed=seed, stratify=stratify)
    x_val, y_val = x_train[val_idx], y_train[val_idx]
    x_train, y_train = x_train[train_idx], y_train[train_idx]
    splits = Splits(x_train, y_train, x_val, y_val, x_test, y_test)
    return splits.subset(*FAST_SIZES) if fast else splits


def to_dataset(
    x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None
):
    """Return a ``tf.data.Dataset`` of ``(images, labels)`` batches for ``fit``:
    ``x`` uint8 (n, 28, 28, 1), ``y`` (n,) or one-hot (n, 10), reshuffled every
    epoch when ``shuffle_seed`` is given. tf.data's autotuning is off: for NumPy
    input Keras' pipeline autotunes, and in TensorFlow 2.21 freeing its iterator
    waited on the autotuning thread (``Model::OptimizeLoop``) with the CPU idle at
    the start of every epoch, for up to a minute."""
    import tensorflow as tf  # here: the loader itself needs no TensorFlow

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(x), seed=shuffle_seed)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.batch(batch_size).prefetch(2).with_options(options)
