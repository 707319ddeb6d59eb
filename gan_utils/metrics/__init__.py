"""Sample-quality metrics that work offline.

* :mod:`~gan_utils.metrics.scores` - Inception Score, Mode Score, KID, MMD
  (RBF), sliced Wasserstein distance, k-NN precision/recall on features or
  class probabilities (float64, Python floats out).
* :mod:`~gan_utils.metrics.frechet` - Frechet distance between Gaussians fitted
  to features (:func:`frechet_distance`, :func:`feature_statistics`,
  :func:`frechet_classifier_distance`: FID's formula in any feature space).
* :mod:`~gan_utils.metrics.extractors` - one :class:`FeatureExtractor`
  interface (``name``, ``features``, ``probs``) for the kit's LeNet and for
  Inception-v3 / the FID Inception loaded from a local weights file.
* :mod:`~gan_utils.metrics.streaming` - float64 running moments, so FID never
  holds all features in memory.
* :mod:`~gan_utils.metrics.sources` / :mod:`~gan_utils.metrics.evaluate` -
  checkpoints, ``.npz`` files and datasets as image streams, and
  :func:`evaluate_samples`: every metric through one extractor, tagged with its
  name (``"fid@lenet"``). The ``python -m gan_utils eval`` command
  (:mod:`~gan_utils.metrics.cli`) prints that as one JSON line.
* :mod:`~gan_utils.metrics.image_metrics` - PSNR and SSIM (scikit-image);
  :mod:`~gan_utils.metrics.perceptual` - :class:`LPIPS` (AlexNet, local weights only).
* :mod:`~gan_utils.metrics.mnist_classifier` - a LeNet-style MNIST classifier
  trained on real digits only, cached on disk: the judge of conditional samples
  and the feature network of the "Frechet LeNet Distance".
* :mod:`~gan_utils.metrics.conditional` - :func:`classifier_accuracy`: how often
  a conditional generator draws the digit it was asked for.
* :func:`bits_per_dim` (from :mod:`gan_utils.losses.likelihood`) for likelihood models;
  :mod:`~gan_utils.metrics.likelihood_eval` - a VAE's importance-sampled test NLL and
  bits per dim (:func:`evaluate_vae_likelihood`, :func:`evaluate_vae_checkpoint`);
  :mod:`~gan_utils.metrics.sr_eval` - MSE / LPIPS of a super-resolution generator and
  of the bilinear baseline (:func:`evaluate_sr`, :func:`evaluate_sr_checkpoint`).

>>> from gan_utils.metrics import load_mnist_classifier, classifier_accuracy, frechet_classifier_distance
>>> clf = load_mnist_classifier()                                  # doctest: +SKIP
>>> classifier_accuracy(G, clf, 1000)                              # doctest: +SKIP
>>> frechet_classifier_distance(real_images, fake_images, clf)    # doctest: +SKIP
>>> ext = load_extractor("lenet")                                  # doctest: +SKIP
>>> inception_score(ext.probs(fake_images_in_unit_range))          # doctest: +SKIP
"""

from gan_utils.losses.likelihood import bits_per_dim
from gan_utils.metrics.conditional import (
    balanced_labels,
    classifier_accuracy,
    generate_conditional,
    per_class_accuracy,
)
from gan_utils.metrics.evaluate import (
    METRICS,
    ReferenceStatistics,
    evaluate_samples,
    load_reference_statistics,
    parse_metrics,
    reference_statistics,
    save_reference_statistics,
)
from gan_utils.metrics.extractors import (
    EXTRACTORS,
    FeatureExtractor,
    InceptionExtractor,
    LeNetExtractor,
    find_weights,
    load_extractor,
)
from gan_utils.metrics.frechet import (
    compute_features,
    feature_statistics,
    frechet_classifier_distance,
    frechet_distance,
)
from gan_utils.metrics.image_metrics import psnr, ssim
from gan_utils.metrics.likelihood_eval import (
    LikelihoodEval,
    evaluate_vae_checkpoint,
    evaluate_vae_likelihood,
    importance_sampled_log_likelihood,
)
from gan_utils.metrics.mnist_classifier import (
    ClassifierConfig,
    MnistClassifier,
    classifier_path,
    default_weights_dir,
    evaluate_classifier,
    load_mnist_classifier,
    load_mnist_tensors,
    train_mnist_classifier,
)
from gan_utils.metrics.perceptual import LPIPS
from gan_utils.metrics.scores import (
    inception_score,
    kid,
    mmd_rbf,
    mode_score,
    polynomial_mmd2,
    precision_recall,
    sliced_wasserstein,
)
from gan_utils.metrics.sources import (
    ImageSource,
    checkpoint_source,
    dataset_source,
    npz_source,
    open_source,
    tensor_source,
)
from gan_utils.metrics.sr_eval import SREval, evaluate_sr, evaluate_sr_checkpoint, load_lpips
from gan_utils.metrics.streaming import FeatureStream, StreamingMoments, accumulate_features

__all__ = [
    "EXTRACTORS",
    "METRICS",
    "ClassifierConfig",
    "FeatureExtractor",
    "FeatureStream",
    "ImageSource",
    "InceptionExtractor",
    "LPIPS",
    "LeNetExtractor",
    "LikelihoodEval",
    "MnistClassifier",
    "ReferenceStatistics",
    "SREval",
    "StreamingMoments",
    "accumulate_features",
    "balanced_labels",
    "bits_per_dim",
    "checkpoint_source",
    "classifier_accuracy",
    "classifier_path",
    "compute_features",
    "dataset_source",
    "default_weights_dir",
    "evaluate_classifier",
    "evaluate_samples",
    "evaluate_sr",
    "evaluate_sr_checkpoint",
    "evaluate_vae_checkpoint",
    "evaluate_vae_likelihood",
    "feature_statistics",
    "find_weights",
    "frechet_classifier_distance",
    "frechet_distance",
    "generate_conditional",
    "importance_sampled_log_likelihood",
    "inception_score",
    "kid",
    "load_extractor",
    "load_lpips",
    "load_mnist_classifier",
    "load_mnist_tensors",
    "load_reference_statistics",
    "mmd_rbf",
    "mode_score",
    "npz_source",
    "open_source",
    "parse_metrics",
    "per_class_accuracy",
    "polynomial_mmd2",
    "precision_recall",
    "psnr",
    "reference_statistics",
    "save_reference_statistics",
    "sliced_wasserstein",
    "ssim",
    "tensor_source",
    "train_mnist_classifier",
]
