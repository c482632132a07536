"""Example images of each (group, label) cell of an image data set."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from .._validation import check_positive_int

__all__ = ["plot_cell_images"]


def plot_cell_images(data: Any, *, per_cell: int = 8, title: str | None = "extras.digit",
                     figsize: tuple[float, float] | None = None) -> np.ndarray:
    """Draw the first ``per_cell`` images of each (group, label) cell, one row per cell.

    Each row is labelled with the cell's name and size, so a reader sees both what a
    cell looks like and how rare it is.

    Parameters
    ----------
    data : FairDataset
        Images ``X`` of shape ``[N, C, H, W]`` (values in [0, 1]) with a sensitive attribute.
    per_cell : int
        Images per row; a cell with fewer images leaves the rest of its row black.
    title : str or None
        ``"extras.<name>"`` writes that extra (e.g. the digit) above every image; None
        writes nothing.
    figsize : (float, float), optional
        Figure size (default: 0.9 inch per image, 1.05 per row).

    Returns
    -------
    numpy.ndarray of Axes
        Shape ``[cells, per_cell]``; ``axes[0, 0].figure`` is the figure.

    Examples
    --------
    >>> from fairlib.datasets import make_colored_digits
    >>> from fairlib.plotting import plot_cell_images
    >>> train = make_colored_digits(strength=0.9, seed=0).train
    >>> plot_cell_images(train, per_cell=4).shape
    (4, 4)
    """
    check_positive_int("per_cell", per_cell)
    X = getattr(data, "X", None)
    if not isinstance(X, torch.Tensor) or X.dim() != 4:
        raise ValueError("Expected `data` to be a FairDataset of images [N, C, H, W], but got "
                         f"{type(data).__name__}{'' if X is None else ' with X of shape ' + str(tuple(X.shape))}.")
    extra = None
    if title is not None:
        key = title.removeprefix("extras.")
        if key not in data.extras:
            raise ValueError(f"Expected `title` to name one of the extras {sorted(data.extras)}, but got {title!r}.")
        extra = data.extras[key].cpu()
    cells, names = data.cells.cpu(), data.cell_names
    fig, axes = plt.subplots(len(names), per_cell, figsize=figsize or (0.7 * per_cell, 0.85 * len(names)),
                             squeeze=False)
    for row, name in enumerate(names):
        rows = torch.nonzero(cells == row).flatten()
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(rows):
                ax.imshow(X[rows[col]].cpu().permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
                if extra is not None:
                    ax.set_title(str(int(extra[rows[col]])), fontsize="x-small", pad=2)
            else:
                ax.set_facecolor("black")
        axes[row, 0].set_ylabel(f"{name}\n(n={len(rows)})", rotation=0, ha="right", va="center",
                                fontsize="small")
    fig.tight_layout()
    return axes
