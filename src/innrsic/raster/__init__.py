"""Raster files: images, GeoTIFF, tiling, Cloud-Optimised GeoTIFF."""
