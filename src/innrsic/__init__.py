"""innrsic: perceptual remote-sensing image compression.

The Python API (`innrsic.api`) is imported on first use, so ``import innrsic`` stays light::

    data = innrsic.compress(image, "jpeg2000:bpp=0.2")
    decoded = innrsic.decompress(data)
    net = innrsic.load_enhancer("enhancer-jpeg2000-bpp0.2")
    enhanced = innrsic.enhance_image(decoded, net)
"""

__version__ = "0.1.0"

_API = {
    "compress": "innrsic.api",
    "decompress": "innrsic.api",
    "enhance_image": "innrsic.enhance",
    "load_enhancer": "innrsic.api",
    "read_image": "innrsic.imageio",
    "write_image": "innrsic.imageio",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> object:
    if name not in _API:
        raise AttributeError(f"module 'innrsic' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_API[name]), name)
