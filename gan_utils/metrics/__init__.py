"""Sample-quality metrics that work offline.

* :mod:`~gan_utils.metrics.frechet` - Frechet distance between Gaussians fitted
  to features (:func:`frechet_distance`, :func:`feature_statistics`,
  :func:`frechet_classifier_distance`: FID's formula in any feature space).
* :mod:`~gan_utils.metrics.mnist_classifier` - a LeNet-style MNIST classifier
  trained on real digits only, cached on disk: the judge of conditional samples
  and the feature network of the "Frechet LeNet Distance".
* :mod:`~gan_utils.metrics.conditional` - :func:`classifier_accuracy`: how often
  a conditional generator draws the digit it was asked for.

>>> from gan_utils.metrics import load_mnist_classifier, classifier_accuracy, frechet_classifier_distance
>>> clf = load_mnist_classifier()                                  # doctest: +SKIP
>>> classifier_accuracy(G, clf, 1000)                              # doctest: +SKIP
>>> frechet_classifier_distance(real_images, fake_images, clf)    # doctest: +SKIP
"""

from gan_utils.metrics.conditional import (
    balanced_labels,
    classifier_accuracy,
    generate_conditional,
    per_class_accuracy,
)
from gan_utils.metrics.frechet import (
    compute_features,
    feature_statistics,
    frechet_classifier_distance,
    frechet_distance,
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

__all__ = [
    "ClassifierConfig",
    "MnistClassifier",
    "balanced_labels",
    "classifier_accuracy",
    "classifier_path",
    "compute_features",
    "default_weights_dir",
    "evaluate_classifier",
    "feature_statistics",
    "frechet_classifier_distance",
    "frechet_distance",
    "generate_conditional",
    "load_mnist_classifier",
    "load_mnist_tensors",
    "per_class_accuracy",
    "train_mnist_classifier",
]
