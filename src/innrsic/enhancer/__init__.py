"""The INN-RSIC invertible enhancer: network, QM, config and checkpoint import/export."""

from innrsic.enhancer.checkpoint import convert_original_checkpoint
from innrsic.enhancer.config import EnhancerConfig
from innrsic.enhancer.network import INNEnhancer
from innrsic.enhancer.quantize import quantize_8bit

__all__ = ["EnhancerConfig", "INNEnhancer", "convert_original_checkpoint", "quantize_8bit"]
