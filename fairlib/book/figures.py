"""Figures that fit the book's text column at their natural size.

The book's kernels save figures as SVG (``BOOK_RC`` and ``BOOK_KERNEL_CONFIG`` in
``fairlib.book.execute``); an SVG is shown
at its natural size unless it is wider than the column, which the browser then scales
down, text included. :func:`fit_to_column` narrows such a figure before it is saved, so
that its text keeps the size the style sets; the book kernels' startup (``BOOK_STARTUP``)
passes every figure they display, glued ones included, through it.
"""

from __future__ import annotations

from typing import Any

from ..plotting.comparison import MAX_WIDTH

#: Width of the text column of the book's HTML pages, in inches of a figure saved as SVG
#: (96 CSS px per inch): sphinx-book-theme shows figures at most 660 px wide at 1280 px.
#: One number with the widest figure fairlib's plotting functions draw (the core cannot
#: import the book, so it lives there).
COLUMN_INCHES = MAX_WIDTH
_TOLERANCE = 0.05  # inches
#: Text of a narrowed figure shrinks with it, to no less than this share of its size
#: (9.5 pt ticks stay above 7.5 pt: 10 px on the page).
MIN_TEXT_SCALE = 0.8
#: A narrowed figure keeps at least this share of the column for its panels, whatever
#: sticks out beside them.
MIN_WIDTH_SHARE = 0.75


def tight_width(fig: Any) -> float:
    """Width in inches of what ``savefig(bbox_inches="tight")`` writes: legends outside
    the axes and the padding (``savefig.pad_inches``) included."""
    import matplotlib

    renderer = fig.canvas.get_renderer()
    fig.draw_without_rendering()
    pad = matplotlib.rcParams["savefig.pad_inches"]
    return float(fig.get_tightbbox(renderer).width) + 2 * (pad if isinstance(pad, (int, float)) else 0.1)


def fit_to_column(fig: Any, width: float = COLUMN_INCHES, *, attempts: int = 4) -> bool:
    """Narrow ``fig`` until its saved (tight) width is at most ``width`` inches.

    The height is kept, so panels become narrower but not flatter; text shrinks with the
    width but by no more than :data:`MIN_TEXT_SCALE`, so it stays legible once the figure is
    shown at its natural size. A figure without a layout engine (or laid out once by
    ``tight_layout``) gets matplotlib's constrained layout, so that labels reflow instead of
    overlapping. A legend wider than the column gets fewer columns (more rows). A figure
    that fits already is left untouched.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (changed in place).
    width : float, default COLUMN_INCHES
        The column width in inches.
    attempts : int, default 4
        Resizes tried (each reflows the layout, which changes the tight width again).

    Returns
    -------
    bool
        Whether the figure was resized.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from fairlib.book.figures import fit_to_column, tight_width
    >>> fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    >>> fit_to_column(fig), round(tight_width(fig), 1) <= 6.8, float(fig.get_size_inches()[1])
    (True, True, 3.0)
    >>> fit_to_column(fig)
    False
    """
    from matplotlib.layout_engine import PlaceHolderLayoutEngine
    from matplotlib.text import Text

    start = tight_width(fig)
    if start <= width + _TOLERANCE:
        return False
    # Narrower panels hold less text: shrink it with the figure, by at most MIN_TEXT_SCALE.
    scale = max(MIN_TEXT_SCALE, width / start)
    for text in fig.findobj(Text):
        text.set_fontsize(text.get_fontsize() * scale)
    if isinstance(fig.get_layout_engine(), (type(None), PlaceHolderLayoutEngine)):
        try:  # no engine, or a tight_layout done once at the old size: reflow at the new one
            fig.set_layout_engine("constrained")
        except RuntimeError:  # e.g. colorbars laid out by hand
            pass
    _narrow_legends(fig, width)
    floor = MIN_WIDTH_SHARE * width
    for _ in range(attempts):
        current = tight_width(fig)
        if current <= width + _TOLERANCE:
            break
        w, h = fig.get_size_inches()
        # What sticks out beyond the figure (a legend beside it, long labels) does not shrink
        # with it: never squeeze the panels below MIN_WIDTH_SHARE of the column for it.
        new = max(floor, w - (current - width) - _TOLERANCE / 2)
        if new >= w - 0.01:
            break
        fig.set_size_inches(new, h, forward=False)
    return True


def _narrow_legends(fig: Any, width: float) -> None:
    """Draw again, with fewer columns, every legend wider than ``width`` inches (a row of
    entries under a figure does not fit a column)."""
    renderer = fig.canvas.get_renderer()
    handles: dict[str, Any] = {}
    for ax in fig.axes:  # the artists legends were made from, by label
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for legend in legends:
        fig.draw_without_rendering()
        wide = legend.get_window_extent(renderer).width / fig.dpi
        ncols = int(getattr(legend, "_ncols", 1))
        if ncols <= 1 or wide <= 0.95 * width:
            continue
        labels = [t.get_text() for t in legend.get_texts()]
        if not all(label in handles for label in labels):
            continue  # made from artists the axes do not list: leave it
        fits = max(1, int(ncols * 0.95 * width / wide))
        parent = legend.parent
        options = {"loc": getattr(legend, "_loc", "best"), "ncols": fits, "frameon": legend.get_frame_on(),
                   "bbox_to_anchor": getattr(legend, "_bbox_to_anchor", None),
                   "title": legend.get_title().get_text() or None}
        if labels:
            options["fontsize"] = legend.get_texts()[0].get_fontsize()
        if parent is fig and options["loc"] in (8, 9) and options["bbox_to_anchor"] is None:
            # under or over the panels: "outside" makes the constrained layout leave it room
            options["loc"] = "outside " + ("lower" if options["loc"] == 8 else "upper") + " center"
        legend.remove()
        parent.legend([handles[label] for label in labels], labels, **options)
