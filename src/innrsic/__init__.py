"""innrsic: perceptual remote-sensing image compression."""

__version__ = "0.1.0"
