"""inplace_magic: names the in-place operation that broke PyTorch autograd, the operation that
saved the tensor, and the skip connection it breaks.

Importing the package has no side effects; ``%load_ext inplace_magic`` registers the magics.
"""

from ._version import __version__

__all__ = ["__version__"]
