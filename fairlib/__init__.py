"""fairlib: fairness metrics and data reweighting for PyTorch."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fairlib")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
