"""A latent-space explorer for any generator or decoder, live in Jupyter and static elsewhere.

In a live notebook (JupyterLab or Jupyter Notebook through a Jupyter server, Colab) it shows
ipywidgets: one slider per chosen latent dimension (an offset added to that coordinate), an
interpolation slider ``alpha`` between two codes ``z_a`` and ``z_b``, a class selector for
conditional models and a button that draws new codes. The image follows the sliders, debounced
(the model runs at most once per pause of ``debounce`` seconds), in ``eval`` mode and under
``torch.no_grad()`` on the model's own device.

Outside a live kernel (``jupyter nbconvert --execute``, the autograder, CI) it draws a static
figure instead: one row per chosen dimension traversed from ``-span`` to ``+span``, and one row
interpolating from ``z_a`` to ``z_b``. Nothing is written to stderr either way.

>>> explore_latent(G, z_dim=64, num_classes=10)                 # doctest: +SKIP
>>> explore_latent(vae.decode, z_dim=20, value_range="unit")   # doctest: +SKIP

How "live" is decided (``live=None``): ``$GAN_UTILS_WIDGETS`` set to ``1`` / ``0`` forces it;
otherwise a kernel started by a Jupyter server (which sets ``$JPY_SESSION_NAME``) or a Colab
runtime is live, and anything else (nbclient, plain Python) is not.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gan_utils.plotting import image_grid

__all__ = ["LatentExplorer", "explore_latent", "is_live_frontend"]

ENV_VAR = "GAN_UTILS_WIDGETS"


def is_live_frontend() -> bool:
    """True when widgets shown now will reach a person (see the module doc for the rule)."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced in {"1", "true", "yes", "on"}:
        return True
    if forced in {"0", "false", "no", "off"}:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return False
    return bool(os.environ.get("JPY_SESSION_NAME")) or "google.colab" in sys.modules


def _model_device(model: Callable[..., Tensor]) -> torch.device:
    module = model if isinstance(model, nn.Module) else getattr(model, "__self__", None)
    if isinstance(module, nn.Module):
        for tensor in (*module.parameters(), *module.buffers()):
            return tensor.device
    return torch.device("cpu")


class LatentExplorer:
    """Explore the latent space of ``model`` (``model(z)`` or, with ``num_classes``, ``model(z, labels)``).

    Args:
        model: a generator or decoder returning images ``(N, C, H, W)``; a module or a bound method
            such as ``vae.decode``.
        z_dim: the latent size (default: ``model.z_dim`` or ``model.latent_dim``).
        num_classes: for a conditional model, the number of classes (default: ``model.num_classes``
            when the model has one); ``None`` for an unconditional one.
        dims: the latent coordinates that get a slider (default: the first ``min(4, z_dim)``).
        span: sliders and the static traversal run over ``[-span, span]``.
        value_range: ``"tanh"`` for outputs in [-1, 1], ``"unit"`` for [0, 1].
        seed: seeds ``z_a`` and ``z_b`` (so the static figure is reproducible).
        debounce: seconds to wait after the last slider move before the model runs (0: at once).
        image_px: width of the live image in pixels.
    """

    def __init__(self, model: Callable[..., Tensor], z_dim: int | None = None, *, num_classes: int | None = None,
                 dims: Sequence[int] | None = None, span: float = 3.0, value_range: str = "tanh", seed: int = 0,
                 debounce: float = 0.15, image_px: int = 256) -> None:
        if not callable(model):
            raise TypeError(f"LatentExplorer needs a generator or decoder to call, got {type(model).__name__}")
        z_dim = z_dim if z_dim is not None else getattr(model, "z_dim", getattr(model, "latent_dim", None))
        if not isinstance(z_dim, int) or z_dim < 1:
            raise ValueError(f"LatentExplorer: give z_dim, the latent size (a positive int); got {z_dim!r}")
        if num_classes is None:
            num_classes = getattr(model, "num_classes", None)
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"LatentExplorer: num_classes must be a positive int or None, got {num_classes!r}")
        dims = list(range(min(4, z_dim))) if dims is None else [int(d) for d in dims]
        bad = [d for d in dims if not 0 <= d < z_dim]
        if not dims or bad:
            raise ValueError(f"LatentExplorer: dims must be latent coordinates in [0, {z_dim}), got {list(dims)}")
        if value_range not in ("tanh", "unit"):
            raise ValueError(f"value_range must be 'tanh' (outputs in [-1, 1]) or 'unit' ([0, 1]), got {value_range!r}")
        if span <= 0 or debounce < 0:
            raise ValueError(f"span must be > 0 and debounce >= 0, got span={span}, debounce={debounce}")
        self.model, self.z_dim, self.num_classes, self.dims = model, z_dim, num_classes, dims
        self.span, self.value_range, self.debounce, self.image_px = float(span), value_range, float(debounce), image_px
        self.device = _model_device(model)
        self._generator = torch.Generator().manual_seed(seed)
        self.z_a, self.z_b = self._draw(), self._draw()
        self.alpha, self.label = 0.0, 0
        self.offsets = dict.fromkeys(dims, 0.0)
        self.renders = 0  # how many times the model ran (the debounce test counts them)
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._widgets: dict[str, Any] = {}
        self.figure: Any = None

    # --- the maths: which code, which image -----------------------------------------------------
    def _draw(self) -> Tensor:
        return torch.randn(self.z_dim, generator=self._generator)

    def new_codes(self) -> None:
        """Draw new ``z_a`` and ``z_b`` (the offsets and alpha stay)."""
        self.z_a, self.z_b = self._draw(), self._draw()

    def code(self, alpha: float | None = None, offsets: dict[int, float] | None = None) -> Tensor:
        """``(1 - alpha) z_a + alpha z_b`` with ``offsets`` added to the chosen coordinates."""
        alpha = self.alpha if alpha is None else alpha
        z = torch.lerp(self.z_a, self.z_b, float(alpha))
        for d, v in (self.offsets if offsets is None else offsets).items():
            z[d] += float(v)
        return z

    def decode(self, codes: Tensor, labels: Tensor | int | None = None) -> Tensor:
        """Images in [0, 1] for a batch of codes ``(N, z_dim)`` (eval mode, no gradients, model's device)."""
        codes = codes.reshape(-1, self.z_dim).to(self.device)
        module = self.model if isinstance(self.model, nn.Module) else getattr(self.model, "__self__", None)
        was_training = module.training if isinstance(module, nn.Module) else None
        try:
            if isinstance(module, nn.Module):
                module.eval()
            with torch.no_grad():
                if self.num_classes is None:
                    out = self.model(codes)
                else:
                    label = self.label if labels is None else labels
                    if isinstance(label, int):
                        label = torch.full((codes.shape[0],), label, dtype=torch.long)
                    out = self.model(codes, label.to(self.device))
        finally:
            if was_training is not None:
                module.train(was_training)
        self.renders += 1
        if not isinstance(out, Tensor) or out.dim() != 4:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"LatentExplorer: the model should return images (N, C, H, W), got {shape}")
        out = out.detach().float().cpu()
        return ((out + 1) / 2 if self.value_range == "tanh" else out).clamp(0, 1)

    def render(self) -> Tensor:
        """The current image ``(C, H, W)`` in [0, 1]."""
        return self.decode(self.code().unsqueeze(0))[0]

    def traversal(self, steps: int = 7) -> Tensor:
        """The static figure's images: one row per chosen dim (offsets ``-span .. span`` from ``z_a``), then
        one row from ``z_a`` to ``z_b``; ``((len(dims) + 1) * steps, C, H, W)`` in [0, 1]."""
        values = torch.linspace(-self.span, self.span, steps)
        rows = [torch.stack([self.code(0.0, {d: float(v)}) for v in values]) for d in self.dims]
        rows.append(torch.stack([self.code(float(a), {}) for a in torch.linspace(0, 1, steps)]))
        return self.decode(torch.cat(rows))

    # --- showing it -------------------------------------------------------------------------------
    def __repr__(self) -> str:
        classes = "" if self.num_classes is None else f", num_classes={self.num_classes}"
        return f"LatentExplorer(z_dim={self.z_dim}, dims={self.dims}{classes}, device={self.device})"

    def show(self, live: bool | None = None, steps: int = 7) -> None:
        """Display the live widget or, outside a live frontend, draw the static figure (kept in ``self.figure``;
        a notebook's inline backend shows it when the cell ends)."""
        live = is_live_frontend() if live is None else live
        if live:
            from IPython.display import display

            display(self.widget())
        else:
            self.figure = self.static_figure(steps)

    def static_figure(self, steps: int = 7):
        """A matplotlib figure: the traversal of each chosen dim and the interpolation ``z_a -> z_b``."""
        import matplotlib.pyplot as plt

        grid = image_grid(self.traversal(steps), nrow=steps, value_range="unit")
        rows = len(self.dims) + 1
        fig, ax = plt.subplots(figsize=(1.1 * steps + 1.6, 1.1 * rows + 0.6))
        ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray" if grid.shape[0] == 1 else None)
        height = grid.shape[1] / rows
        ax.set_yticks([height * (i + 0.5) for i in range(rows)], [f"z[{d}]" for d in self.dims] + ["a -> b"])
        ax.set_xticks([])
        ax.set_xlabel(f"rows z[d]: z_a with an offset from -{self.span:g} to +{self.span:g} on z[d];  "
                      "last row: alpha from 0 (z_a) to 1 (z_b)", fontsize=9)
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        label = "" if self.num_classes is None else f", class {self.label}"
        ax.set_title(f"latent traversal (offsets) and interpolation (alpha){label}", fontsize=10)
        fig.tight_layout()
        return fig

    def _png(self) -> bytes:
        from PIL import Image

        image = self.render()
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        pil = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
        scale = max(1, self.image_px // max(pil.size))
        pil = pil.resize((pil.size[0] * scale, pil.size[1] * scale), Image.NEAREST)
        buffer = io.BytesIO()
        pil.save(buffer, format="PNG")
        return buffer.getvalue()

    def refresh(self) -> None:
        """Redraw the live image now (the sliders call this after ``debounce`` seconds)."""
        with self._lock:
            if "image" in self._widgets:
                self._widgets["image"].value = self._png()

    def _schedule(self) -> None:
        if self.debounce == 0:
            self.refresh()
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.debounce, self.refresh)
        self._timer.daemon = True
        self._timer.start()

    def widget(self):
        """The ipywidgets box (sliders, class selector, new-codes button, image)."""
        import ipywidgets as W

        sliders = {d: W.FloatSlider(value=self.offsets[d], min=-self.span, max=self.span, step=0.05,
                                    description=f"z[{d}] +", continuous_update=True) for d in self.dims}
        alpha = W.FloatSlider(value=self.alpha, min=0.0, max=1.0, step=0.02, description="alpha", continuous_update=True)
        controls: list[Any] = [alpha, *sliders.values()]

        def on_offset(change: dict, d: int) -> None:
            self.offsets[d] = float(change["new"])
            self._schedule()

        def on_alpha(change: dict) -> None:
            self.alpha = float(change["new"])
            self._schedule()

        for d, s in sliders.items():
            s.observe(lambda change, d=d: on_offset(change, d), names="value")
        alpha.observe(on_alpha, names="value")
        if self.num_classes is not None:
            label = W.Dropdown(options=list(range(self.num_classes)), value=self.label, description="class")

            def on_label(change: dict) -> None:
                self.label = int(change["new"])
                self._schedule()

            label.observe(on_label, names="value")
            controls.insert(0, label)
        button = W.Button(description="new z_a, z_b")

        def on_click(_: Any) -> None:
            self.new_codes()
            self.refresh()

        button.on_click(on_click)
        controls.append(button)
        image = W.Image(value=self._png(), format="png", width=self.image_px)
        image.add_class("gan-utils-explorer-image")
        self._widgets = {"image": image, "alpha": alpha, "sliders": sliders, "button": button}
        box = W.HBox([W.VBox(controls), image])
        box.add_class("gan-utils-explorer")
        return box


def explore_latent(model: Callable[..., Tensor], z_dim: int | None = None, *, live: bool | None = None,
                   **kwargs: Any) -> LatentExplorer:
    """Build a :class:`LatentExplorer` and show it (live widget or static figure); returns the explorer."""
    explorer = LatentExplorer(model, z_dim, **kwargs)
    explorer.show(live=live)
    return explorer
