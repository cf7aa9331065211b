"""The enhancer recipe: INN-RSIC's network, pairs data, loss, optimisation and validation."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from typing import Literal

import numpy as np
import torch
from torch import nn

from innrsic.compute.tensors import to_tensor, to_uint8
from innrsic.data import PairsDataset, derive_seed, spread_indices
from innrsic.enhancer import EnhancerConfig, INNEnhancer, load_enhancer, save_enhancer
from innrsic.enhancer.initialisation import identity_initialise
from innrsic.errors import ConfigError, MetricError
from innrsic.metrics import MS_SSIM_MIN_SIDE, mean_psnr, ms_ssim, psnr
from innrsic.train.config import EnhancerTrainingConfig
from innrsic.train.losses import (
    EnhancerLoss,
    build_feature_extractor,
    reverse_input,
    sample_reverse_noise,
)
from innrsic.train.recipe import (
    Batch,
    Optimization,
    StepOutput,
    ValidationResult,
    adamw_multistep,
)

log = logging.getLogger(__name__)

METRIC_MODES: dict[str, Literal["min", "max"]] = {"lpips": "min", "psnr": "max", "ms_ssim": "max"}


class EnhancerTrainingPass(nn.Module):
    """Forward and reverse passes of one step, as one module so DDP sees a single forward."""

    def __init__(
        self,
        net: INNEnhancer,
        quantize_y: bool,
        reverse_source: Literal["y", "decoded"] = "y",
        restore: bool = False,
        forward_pass: bool = True,
    ) -> None:
        super().__init__()
        self.net = net
        self.quantize_y = quantize_y
        self.reverse_source = reverse_source
        self.restore = restore
        self.forward_pass = forward_pass

    def forward(
        self,
        gt: torch.Tensor,
        decoded: torch.Tensor,
        y_noise: torch.Tensor | None,
        z_prime: torch.Tensor,
    ) -> tuple[
        torch.Tensor | None, torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor | None
    ]:
        """``(y, z, reverse input, reverse, restored or None)``; y and z are None without the
        forward pass (only with ``reverse_source: decoded``)."""
        y, z = self.net(gt) if self.forward_pass else (None, None)
        if self.reverse_source == "decoded":
            y_in = decoded + y_noise if y_noise is not None else decoded
        else:
            y_in = reverse_input(y, y_noise, self.quantize_y)
        reverse = self.net.inverse(y_in, z_prime)
        restored = self.net.inverse(decoded, torch.zeros_like(z_prime)) if self.restore else None
        return y, z, y_in, reverse, restored


class EnhancerRecipe:
    """Trains `INNEnhancer` on (ground truth, decoded) pairs with the INN-RSIC loss."""

    name = "enhancer"

    def __init__(self, config: EnhancerTrainingConfig) -> None:
        self.config = config
        self.best_metric = f"enhanced/{config.val.metric}"
        self.best_mode = METRIC_MODES[config.val.metric]
        self.validate_every = config.val.every if config.data.val else 0
        self.num_workers = config.data.workers
        self.model_config = EnhancerConfig.of(config.model)
        # Fail on missing weights before any training work starts.
        self.features = build_feature_extractor(
            config.loss.feature_backbone, config.loss.feature_weights or None
        )
        self.loss = EnhancerLoss(config.loss, self.features)
        self.device = torch.device("cpu")
        self._val_data: PairsDataset | None = None
        self._decoded_metrics: dict[str, float] | None = None
        if self.validate_every:
            from innrsic.metrics.perceptual import lpips_model

            lpips_model(config.val.lpips_weights or None)  # WeightsError now, not at step 5000

    @property
    def grad_clip(self) -> float:
        return self.config.optim.grad_clip

    def build_model(self) -> INNEnhancer:
        init = self.config.model.init_weights
        if not init:
            net = INNEnhancer(self.model_config)
            if self.config.model.init == "identity":
                identity_initialise(net, self.config.model.latent_gain)
            return net
        net = load_enhancer(init)
        if net.config != self.model_config:
            raise ConfigError(
                f"model.init_weights {init} has shape {net.config}, the config asks for "
                f"{self.model_config}"
            )
        log.info("starting from the weights in %s", init)
        return net

    def setup(self, device: torch.device, rank: int, world_size: int) -> None:
        self.device = device
        self.loss = EnhancerLoss(self.config.loss, self.features, sum_scale=float(world_size))
        self.loss.to(device)

    def train_dataset(self) -> PairsDataset:
        data = self.config.data
        return PairsDataset(
            [data.resolve(d) for d in data.train],
            codec=[data.codec, *data.mixed_codecs],
            crop_size=data.crop_size,
        )

    def training_module(self, model: nn.Module) -> nn.Module:
        loss = self.config.loss
        return EnhancerTrainingPass(
            model,
            loss.quantize_y,
            loss.reverse_source,  # type: ignore[arg-type]
            restore=loss.restore_weight > 0,
            forward_pass=loss.forward_weight > 0 or loss.latent_weight > 0,
        )

    def build_optimization(self, model: nn.Module) -> Optimization:
        return adamw_multistep(model.parameters(), self.config.optim)

    def clip_parameters(self, model: nn.Module) -> Iterable[nn.Parameter]:
        return model.parameters()

    def training_step(self, module: nn.Module, batch: Batch, step: int,
                      generator: torch.Generator, want_images: bool) -> StepOutput:
        gt, decoded = batch["gt"], batch["decoded"]
        noise = sample_reverse_noise(
            self.config.loss, gt.shape, self.model_config.latent_channels, generator, gt.device
        )
        y, z, y_in, reverse, restored = module(gt, decoded, noise.y_noise, noise.z)
        terms = self.loss(gt, decoded, y, z, reverse, restored)
        images = {}
        if want_images:
            images["train/gt|decoded|reverse input|reverse"] = torch.cat(
                [t[0].detach().clamp(0, 1) for t in (gt, decoded, y_in, reverse)], dim=2
            ).cpu()
        floats = {name: float(value.detach()) for name, value in terms.items()}
        floats["y_noise"] = float(noise.y_noise is not None)
        return StepOutput(terms["total"], floats, images)

    def _validation_set(self) -> tuple[PairsDataset, list[int]]:
        data = self.config.data
        if self._val_data is None:
            self._val_data = PairsDataset([data.resolve(data.val)], codec=data.codec,
                                          crop_size=None)
        return self._val_data, spread_indices(len(self._val_data), self.config.val.max_images)

    def validate(self, model: nn.Module, device: torch.device) -> ValidationResult:
        """PSNR, MS-SSIM and LPIPS-squeeze of decoded and enhanced images vs ground truth.

        Enhanced = ``enhance(decoded, temperature)`` with z drawn from a generator seeded by
        (val.seed, image index), so numbers do not depend on the order or the device.
        MS-SSIM skips images under 161 px (its 5-scale pyramid does not fit).
        """
        from innrsic.metrics.perceptual import lpips_tensor

        val = self.config.val
        dataset, indices = self._validation_set()
        weights = val.lpips_weights or None
        scores: dict[str, list[float]] = {f"{kind}/{m}": [] for kind in ("decoded", "enhanced")
                                          for m in ("psnr", "ms_ssim", "lpips")}
        images: dict[str, torch.Tensor] = {}
        was_training = model.training
        model.eval()
        try:
            for index in indices:
                gt, decoded = dataset.load_arrays(index)
                decoded_t = to_tensor(decoded)[None].to(device)
                generator = torch.Generator().manual_seed(derive_seed(val.seed, index))
                with torch.no_grad():
                    enhanced_t = model.enhance(decoded_t, val.temperature, generator)  # type: ignore[operator]
                enhanced = to_uint8(enhanced_t[0])
                gt_t = to_tensor(gt)[None].to(device)
                for kind, image, tensor in (("decoded", decoded, decoded_t),
                                            ("enhanced", enhanced, to_tensor(enhanced)[None])):
                    if kind == "decoded" and self._decoded_metrics is not None:
                        continue
                    scores[f"{kind}/psnr"].append(psnr(gt, image))
                    if min(gt.shape[:2]) >= MS_SSIM_MIN_SIDE:
                        scores[f"{kind}/ms_ssim"].append(ms_ssim(gt, image))
                    scores[f"{kind}/lpips"].append(
                        float(lpips_tensor(gt_t, tensor.to(device), weights)[0])
                    )
                if not images:
                    images["val/gt|decoded|enhanced"] = torch.cat(
                        [to_tensor(gt), to_tensor(decoded), to_tensor(enhanced)], dim=2
                    )
        finally:
            model.train(was_training)
        metrics = {}
        for name, values in scores.items():
            if name.startswith("decoded/") and self._decoded_metrics is not None:
                continue
            metrics[name] = _mean(name, values)
        if self._decoded_metrics is None:
            self._decoded_metrics = {k: v for k, v in metrics.items() if k.startswith("decoded/")}
        metrics.update(self._decoded_metrics)
        metrics["images"] = float(len(indices))
        return ValidationResult(dict(sorted(metrics.items())), images)

    def save_model(self, model: nn.Module, path: str | os.PathLike[str]) -> None:
        save_enhancer(model, path)  # type: ignore[operator]


def _mean(name: str, values: list[float]) -> float:
    if not values:
        return math.nan
    if name.endswith("/psnr"):
        try:
            return mean_psnr(values)
        except MetricError:
            return math.nan
    return float(np.mean(values))
