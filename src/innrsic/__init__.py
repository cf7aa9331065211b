"""innrsic: perceptual remote-sensing image compression.

The Python API (`innrsic.api`) is imported on first use, so ``import innrsic`` stays light::

    data = innrsic.compress(image, "jpeg2000:bpp=0.2")
    decoded = innrsic.decompress(data)
    net = innrsic.load_enhancer("enhancer-jpeg2000-bpp0.2")
    enhanced = innrsic.enhance_image(decoded, net)
    with innrsic.open("scene.rsic") as scene:    # `innrsic.rsic.reader.open_rsic`
        samples = scene.read(window=rasterio.windows.Window(0, 0, 512, 512))
"""

__version__ = "0.1.0"

_API = {
    "compress": ("innrsic.api", "compress"),
    "decompress": ("innrsic.api", "decompress"),
    "enhance_image": ("innrsic.enhancer.apply", "enhance_image"),
    "load_enhancer": ("innrsic.api", "load_enhancer"),
    "open": ("innrsic.rsic.reader", "open_rsic"),
    "read_image": ("innrsic.raster.image", "read_image"),
    "write_image": ("innrsic.raster.image", "write_image"),
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> object:
    if name not in _API:
        raise AttributeError(f"module 'innrsic' has no attribute {name!r}")
    import importlib

    module, attribute = _API[name]
    return getattr(importlib.import_module(module), attribute)
