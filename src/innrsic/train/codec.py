"""The learned-codec recipe: a CompressAI model trained for ``lambda * 255^2 * MSE + bpp``.

Training follows CompressAI's own recipe (``examples/train.py``): the rate-distortion loss
(`compressai.losses.RateDistortionLoss`) trains every parameter except the entropy
bottleneck's ``quantiles``; those are fitted by the model's auxiliary loss with a second Adam
after each main step (an `AuxiliaryObjective` of the shared loop). Data are random crops of
ground-truth images with random flips and 90-degree rotations.

Validation goes through the codec exactly as ``innrsic compress`` does: the model is copied,
exported with `save_learned_checkpoint` (which runs ``update(force=True)``), loaded as the
`LearnedCodec` of ``<arch>:weights=FILE``, and every validation image is encoded to a payload
and decoded from it. bpp comes from the payload bytes (the codec's own payload: the
entropy-coded streams plus a 15-byte header, their lengths and a CRC-32; a ``.rsic`` file adds
its container header, 54 bytes plus the codec spec, around it),
PSNR from the decoded 8-bit image. The likelihood-estimated bpp of the same padded image is
logged beside it. The best model minimises ``lambda * 255^2 * MSE + bpp`` with both terms
measured that way.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from innrsic.compute.tensors import to_tensor
from innrsic.data import (
    ImageFolderDataset,
    ImageRef,
    spread_indices,
)
from innrsic.data.image_sets import image_set, is_split
from innrsic.errors import ConfigError, MetricError
from innrsic.metrics import bits_per_pixel, mean_psnr, psnr
from innrsic.train.config import CodecTrainingConfig, load_config
from innrsic.train.recipe import (
    AuxiliaryObjective,
    Batch,
    Optimization,
    StepOutput,
    ValidationResult,
)
from innrsic.train.trainer import TrainResult, run_recipe

log = logging.getLogger(__name__)

QUANTILES_SUFFIX = ".quantiles"  # the entropy bottleneck parameters the auxiliary loss trains


def load_codec_config(
    path: str | os.PathLike[str] | None = None, overrides: Iterable[str] = ()
) -> CodecTrainingConfig:
    """The codec training config: defaults <- YAML file <- ``section.key=value`` overrides."""
    return load_config(CodecTrainingConfig, path, overrides)


def train_codec(
    config: CodecTrainingConfig, resume: bool = False, stop_at: int | None = None
) -> TrainResult:
    """Train a learned codec as `config` says; `resume` continues from the newest checkpoint.

    `stop_at` ends the run after that step as if it had been interrupted; a later call with
    ``resume=True`` continues it exactly. ``best.safetensors`` and ``final.safetensors`` in the
    run directory are codec weights, e.g. ``--codec elic:weights=RUN/best.safetensors``.
    """
    return run_recipe(CodecRecipe(config), config, resume, stop_at)


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(main, auxiliary) trainable parameters, in name order: the auxiliary ones are the
    entropy bottlenecks' ``quantiles`` (as CompressAI's examples split them)."""
    main, aux = [], []
    for name, param in sorted(model.named_parameters()):
        if param.requires_grad:
            (aux if name.endswith(QUANTILES_SUFFIX) else main).append(param)
    return main, aux


class CodecRecipe:
    """Trains a CompressAI model (`config.model`) for the rate-distortion loss at `lmbda`."""

    name = "codec"
    best_metric = "val/rd_loss"
    best_mode = "min"

    def __init__(self, config: CodecTrainingConfig) -> None:
        self.config = config
        self.arch = config.model.arch
        self.lmbda = config.loss.lmbda
        self.validate_every = config.val.every if config.data.val else 0
        self.num_workers = config.data.workers
        self.loss: nn.Module | None = None
        # Resolve the data now: a missing folder or a reserved split fails before any work.
        self.train_refs = self._train_refs()
        self.val_refs = self._validation_refs() if self.validate_every else []
        self._val_images: dict[int, np.ndarray] = {}

    # -- data --------------------------------------------------------------------------------

    def _images(self, entry: str) -> list[ImageRef]:
        data = self.config.data
        return image_set(entry if is_split(entry) else data.resolve(entry), data.root)

    def _train_refs(self) -> list[ImageRef]:
        crop = self.config.data.crop_size
        refs, small = [], []
        for entry in self.config.data.train:
            for ref in self._images(entry):
                height, width = _image_size(ref)
                (refs if min(height, width) >= crop else small).append(ref)
        if small:
            log.info(
                "skipping %d training image(s) smaller than the %dx%d crop: %s%s",
                len(small),
                crop,
                crop,
                ", ".join(r.name for r in small[:5]),
                " ..." if len(small) > 5 else "",
            )
        if not refs:
            raise ConfigError(
                f"no training image of data.train {self.config.data.train} is at "
                f"least {crop}x{crop} (data.crop_size)"
            )
        return refs

    def _validation_refs(self) -> list[ImageRef]:
        refs = self._images(self.config.data.val)
        return [refs[i] for i in spread_indices(len(refs), self.config.val.max_images)]

    def train_dataset(self) -> ImageFolderDataset:
        return ImageFolderDataset(self.train_refs, crop_size=self.config.data.crop_size)

    # -- model and optimisation --------------------------------------------------------------

    @property
    def grad_clip(self) -> float:
        return self.config.optim.grad_clip

    def build_model(self) -> nn.Module:
        from innrsic.codecs.learned_checkpoint import build_model
        from innrsic.errors import WeightsError

        try:
            return build_model(self.arch, self.config.model.constructor_args())
        except WeightsError as exc:
            raise ConfigError(f"model: {exc}") from exc

    def setup(self, device: torch.device, rank: int, world_size: int) -> None:
        from compressai.losses import RateDistortionLoss

        # lambda * 255^2 * MSE + bpp, each a mean over the local batch (DDP averages the
        # gradients over ranks, so the global batch is weighted as one).
        self.loss = RateDistortionLoss(lmbda=self.lmbda, metric="mse")

    def training_module(self, model: nn.Module) -> nn.Module:
        # The quantiles get no gradient from the training pass (the auxiliary step fits them,
        # identically on every rank), so DDP must neither wait for nor average one.
        names = [n for n, _ in model.named_parameters() if n.endswith(QUANTILES_SUFFIX)]
        nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            model, names
        )
        return model

    def build_optimization(self, model: nn.Module) -> Optimization:
        optim = self.config.optim
        main, aux = split_parameters(model)
        optimizer = torch.optim.Adam(main, lr=optim.lr, betas=(optim.betas[0], optim.betas[1]))
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=list(optim.milestones), gamma=optim.gamma
        )
        auxiliary = []
        if aux:
            aux_optimizer = torch.optim.Adam(aux, lr=optim.aux_lr)
            auxiliary.append(AuxiliaryObjective("aux", model.aux_loss, aux_optimizer))  # type: ignore[arg-type]
        return Optimization([optimizer], [scheduler], auxiliary)

    def clip_parameters(self, model: nn.Module) -> Iterable[nn.Parameter]:
        return split_parameters(model)[0]

    def training_step(self, module: nn.Module, batch: Batch, step: int,
                      generator: torch.Generator, want_images: bool) -> StepOutput:
        x = batch["gt"]
        # CompressAI draws its quantisation noise from the global generator; seed it from this
        # step's generator so the noise is a function of (seed, step, rank) like every other
        # draw of the loop, and a resumed run repeats it exactly.
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            out = module(x)
        assert self.loss is not None, "setup() comes first"
        terms = self.loss(out, x)
        mse = float(terms["mse_loss"].detach())
        floats = {
            "total": float(terms["loss"].detach()),
            "bpp": float(terms["bpp_loss"].detach()),
            "mse": mse,
            "psnr": 10.0 * math.log10(1.0 / mse) if mse > 0 else math.inf,
        }
        images = {}
        if want_images:
            images["train/gt|x_hat"] = torch.cat(
                [x[0].detach(), out["x_hat"][0].detach().clamp(0, 1)], dim=2
            ).cpu()
        return StepOutput(terms["loss"], floats, images)

    # -- validation and export ---------------------------------------------------------------

    def _validation_image(self, index: int) -> np.ndarray:
        if index not in self._val_images:
            self._val_images[index] = self.val_refs[index].load()
        return self._val_images[index]

    def validate(self, model: nn.Module, device: torch.device) -> ValidationResult:
        """Real bitstreams of the validation images: bpp from the bytes, PSNR of the decoded
        image, the likelihood-estimated bpp, and the RD loss that picks the best model."""
        from innrsic.codecs.learned import LEARNED_CODECS

        scores: dict[str, list[float]] = {
            name: []
            for name in ("bpp_actual", "bpp_estimated", "psnr", "mse", "encode_s", "decode_s")
        }
        images: dict[str, torch.Tensor] = {}
        with tempfile.TemporaryDirectory(prefix="innrsic-codec-val-") as tmp:
            path = Path(tmp) / f"{self.arch}.safetensors"
            self.save_model(model, path)
            codec = LEARNED_CODECS[self.arch](weights=path)
            for index in range(len(self.val_refs)):
                image = self._validation_image(index)
                height, width = image.shape[:2]
                start = time.perf_counter()
                payload = codec.encode(image)
                middle = time.perf_counter()
                decoded = codec.decode(payload)
                scores["encode_s"].append(middle - start)
                scores["decode_s"].append(time.perf_counter() - middle)
                scores["bpp_actual"].append(bits_per_pixel(len(payload), height, width))
                scores["bpp_estimated"].append(_estimated_bpp(codec.loaded.model, image))
                scores["psnr"].append(psnr(image, decoded))
                scores["mse"].append(_mse(image, decoded))
                if not images:
                    images["val/gt|decoded"] = torch.cat(
                        [to_tensor(image), to_tensor(decoded)], dim=2
                    )
        metrics = {f"val/{name}": _mean(name, values) for name, values in scores.items()}
        metrics["val/rd_loss"] = (
            self.lmbda * 255.0**2 * metrics["val/mse"] + metrics["val/bpp_actual"]
        )
        metrics["val/images"] = float(len(self.val_refs))
        return ValidationResult(dict(sorted(metrics.items())), images)

    def save_model(self, model: nn.Module, path: str | os.PathLike[str]) -> None:
        """Codec weights (innrsic safetensors with CDF tables and lambda) of a CPU copy, so the
        training model's buffers and device stay as they are."""
        from innrsic.codecs.learned_checkpoint import save_learned_checkpoint

        exported = copy.deepcopy(model).to("cpu").eval()
        save_learned_checkpoint(exported, self.arch, path, lmbda=self.lmbda)


def _image_size(ref: ImageRef) -> tuple[int, int]:
    """(height, width) of an image reference, from the box or the file header."""
    if ref.box is not None:
        return ref.box[2], ref.box[3]
    from PIL import Image

    try:
        with Image.open(ref.path) as image:
            width, height = image.size
    except OSError:  # a format Pillow cannot open lazily: read it
        height, width = ref.load().shape[:2]
    return height, width


def _estimated_bpp(model: nn.Module, image: np.ndarray) -> float:
    """``-sum(log2 likelihoods) / pixels`` of the model's forward pass on the image padded as
    the codec pads it (eval mode: rounded latents, as coded)."""
    from innrsic.codecs.learned import PAD_MULTIPLE
    from innrsic.codecs.learned_checkpoint import deterministic_cpu

    height, width = image.shape[:2]
    x = to_tensor(image)[None]
    pad_h, pad_w = (-height) % PAD_MULTIPLE, (-width) % PAD_MULTIPLE
    x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    with deterministic_cpu():
        likelihoods = model(x)["likelihoods"]
        bits = sum(float(torch.log2(v).sum()) for v in likelihoods.values())
    return -bits / (height * width)


def _mse(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean squared error on the [0, 1] scale (the loss's units)."""
    diff = reference.astype(np.float64) - test.astype(np.float64)
    return float(np.mean(diff**2)) / 255.0**2


def _mean(name: str, values: Sequence[float]) -> float:
    if not values:
        return math.nan
    if name == "psnr":
        try:
            return mean_psnr(values)
        except MetricError:
            return math.nan
    return float(np.mean(values))
