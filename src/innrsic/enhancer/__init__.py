"""The INN-RSIC invertible enhancer: network, QM, config, weights files and checkpoint import."""

from innrsic.enhancer.checkpoint import convert_original_checkpoint, from_original_checkpoint
from innrsic.enhancer.config import EnhancerConfig
from innrsic.enhancer.network import INNEnhancer
from innrsic.enhancer.quantize import quantize_8bit
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.enhancer.weights_file import load_enhancer, save_enhancer

__all__ = [
    "EnhanceSettings",
    "EnhancerConfig",
    "INNEnhancer",
    "convert_original_checkpoint",
    "from_original_checkpoint",
    "load_enhancer",
    "quantize_8bit",
    "save_enhancer",
]
