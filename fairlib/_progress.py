"""Progress bars that behave in terminals, logs and notebooks."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any


def progress(iterable: Iterable[Any], enabled: bool, **kwargs: Any) -> Any:
    """``iterable`` wrapped in a tqdm bar when ``enabled``, else returned as it is.

    In a notebook with ipywidgets the bar is a widget; without ipywidgets tqdm would
    warn and print text, so the plain text bar is used directly. Disabled bars import
    nothing and print nothing (executed book pages stay clean).
    """
    if not enabled:
        return iterable
    try:
        import ipywidgets  # noqa: F401  (tqdm's notebook bar needs it)

        from tqdm.auto import tqdm
    except ImportError:
        from tqdm.std import tqdm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tqdm(iterable, **kwargs)
