"""gan_utils: the shared library of the course kit.

Data (``gan_utils.data``), models (``gan_utils.models``), losses
(``gan_utils.losses``), trainers (``gan_utils.train``), metrics
(``gan_utils.metrics``) and plotting (``gan_utils.plotting``). Submodules are
imported on demand so ``import gan_utils`` stays cheap.
"""

from gan_utils.device import seed_everything, select_device, set_deterministic

__version__ = "0.1.0"
__all__ = ["seed_everything", "select_device", "set_deterministic", "__version__"]
