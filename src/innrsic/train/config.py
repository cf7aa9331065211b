"""Typed configuration: dataclasses with the paper's published values as defaults, read from YAML.

A YAML file states only what differs from the defaults; ``--set section.key=value`` overrides
any field after the file is read. Loading is strict: an unknown key, a value of the wrong type or
an invalid value raises :class:`ConfigError` naming the key (and, for unknown keys, the valid
ones). YAML is read with ``yaml.safe_load`` only; override values follow YAML's safe scalar rules
(``2e-4`` and ``[1, 2]`` work; strings need no quotes).

YAML 1.1 reads ``1e-4`` (no dot) as a string; a float field accepts such a string when it is a
plain decimal number, so ``lr: 1e-4`` means what it says.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from innrsic.codecs.architectures import ARCHITECTURES
from innrsic.enhancer.config import SUPPORTED_EXPANSIONS, EnhancerShape
from innrsic.errors import ConfigError

T = TypeVar("T")

_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


# --------------------------------------------------------------------------------------------
# Schema: the enhancer training configuration (defaults = INN-RSIC's published configuration)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnhancerModelConfig(EnhancerShape):
    """The invertible enhancer's shape (the fields of `EnhancerShape`; the network's config is
    ``EnhancerConfig.of(model)``) and where it starts.

    `init_weights`: innrsic enhancer weights (safetensors) of the same shape to start from
    instead of the fresh initialisation, e.g. a model trained behind the same codec at
    another rate (fine-tuning); empty: fresh.
    `init`: the fresh initialisation, ``paper`` (YUV colour matrices, the published start) or
    ``identity`` (the inverse starts as "keep the decoded image", with the latent scaled by
    `latent_gain`; see `innrsic.enhancer.initialisation`).
    """

    init_weights: str = ""
    init: Literal["paper", "identity"] = "paper"
    latent_gain: float = 16.0

    def validate(self, where: str) -> None:
        _positive(where, blocks=self.blocks, growth=self.growth,
                  gaussian_growth=self.gaussian_growth, clamp=self.clamp,
                  latent_gain=self.latent_gain)
        if self.init not in ("paper", "identity"):
            raise ConfigError(f"{where}.init must be paper or identity, got {self.init!r}")
        if self.init_weights and self.init != "paper":
            raise ConfigError(
                f"{where}.init_weights and {where}.init={self.init} exclude each other"
            )
        if self.expansion not in SUPPORTED_EXPANSIONS:
            raise ConfigError(f"{where}.expansion must be 1 or 2, got {self.expansion}")


@dataclass
class PairsDataConfig:
    """Training and validation pairs, as written by `innrsic pairs` (one directory each).

    Relative directories resolve against `root` when it is set, else against the current
    directory. `codec` must equal the codec spec recorded in every pairs manifest, except that
    training pairs may also be of a `mixed_codecs` spec: pairs of other rates mixed in on
    purpose, so the network sees a wider range of distortion than one rate gives (validation
    pairs and the model's recorded codec stay `codec`).
    """

    codec: str = ""
    mixed_codecs: list[str] = field(default_factory=list)
    train: list[str] = field(default_factory=list)
    val: str = ""
    root: str = ""
    crop_size: int = 128
    workers: int = 4

    def validate(self, where: str) -> None:
        if not self.codec:
            raise ConfigError(
                f"{where}.codec is required (the codec spec the pairs were made with)"
            )
        if not self.train:
            raise ConfigError(f"{where}.train is required: a list of pairs directories")
        _positive(where, crop_size=self.crop_size)
        if self.crop_size % 2:
            raise ConfigError(f"{where}.crop_size must be even (Haar downsampling), got "
                              f"{self.crop_size}")
        _non_negative(where, workers=self.workers)

    def resolve(self, directory: str) -> Path:
        """A pairs directory from this section, made absolute (see the class doc)."""
        return _resolve_under(self.root, directory)


@dataclass
class EnhancerLossConfig:
    """INN-RSIC's loss. Weights are the effective ones (the feature weight is applied once).

    `reverse_source` is what the reverse pass starts from: ``y`` (the paper: QM of the forward
    output) or ``decoded`` (the codec's real output, as at inference; short trainings need it,
    because the forward pass otherwise hides the ground truth in ``y`` and the inverse never
    learns to restore a real decoded image).
    `restore_weight` adds a second reverse pass, ``inverse(decoded, z = 0)``, with a
    sum-of-squares pixel term against the ground truth: it makes temperature 0 a restoration
    (the MSE-optimal estimate) while the first reverse pass, at `reverse_temperature`, carries
    the feature term that teaches the sampled texture. 0 (the paper) skips that pass.
    Both `forward_weight` and `latent_weight` 0 skip the forward pass (a restoration network
    trained through its inverse only).
    `latent_loss` is how z is pulled towards N(0, I): ``sum_squares`` (the paper: the sum of
    z^2 per image, which also shrinks z, so that sampling z ~ N(0, I) at decode time draws
    far larger latents than training saw) or ``moments`` (per latent channel, the KL
    divergence from N(0, 1) of a Gaussian with z's batch mean and variance, times the pixels
    per image: unit variance is its minimum, so T = 1 draws latents of the size forward gave).
    `feature_weights` is a weights file; empty means: for ``vgg19`` the torch hub cache
    (``vgg19-dcbb9e9d.pth``) or ``$INNRSIC_WEIGHTS_DIR``, for ``squeeze``
    ``$INNRSIC_WEIGHTS_DIR/squeeze.backbone.pth``.
    """

    forward_weight: float = 1.0
    latent_weight: float = 200.0
    latent_loss: Literal["sum_squares", "moments"] = "sum_squares"
    reverse_weight: float = 0.05
    restore_weight: float = 0.0
    feature_weight: float = 1e-4
    feature_backbone: Literal["vgg19", "squeeze", "none"] = "vgg19"
    feature_weights: str = ""
    quantize_y: bool = True
    reverse_source: Literal["y", "decoded"] = "y"
    reverse_temperature: float = 1.0
    y_noise_std: float = 0.01
    y_noise_prob: float = 0.5

    def validate(self, where: str) -> None:
        _non_negative(where, forward_weight=self.forward_weight,
                      latent_weight=self.latent_weight, reverse_weight=self.reverse_weight,
                      restore_weight=self.restore_weight,
                      feature_weight=self.feature_weight, y_noise_std=self.y_noise_std,
                      reverse_temperature=self.reverse_temperature)
        if self.reverse_source == "y" and self.forward_weight == 0 and self.latent_weight == 0:
            raise ConfigError(
                f"{where}: forward_weight and latent_weight 0 skip the forward pass, which "
                "reverse_source y needs; use reverse_source decoded"
            )
        if self.latent_loss not in ("sum_squares", "moments"):
            raise ConfigError(
                f"{where}.latent_loss must be sum_squares or moments, got {self.latent_loss!r}"
            )
        if not 0.0 <= self.y_noise_prob <= 1.0:
            raise ConfigError(f"{where}.y_noise_prob must be in [0, 1], got {self.y_noise_prob}")


@dataclass
class OptimConfig:
    """AdamW with a MultiStepLR schedule and gradient-norm clipping (0 disables clipping)."""

    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 1e-5
    milestones: list[int] = field(default_factory=lambda: [100_000, 200_000, 300_000, 400_000])
    gamma: float = 0.5
    grad_clip: float = 10.0

    def validate(self, where: str) -> None:
        _positive(where, lr=self.lr, gamma=self.gamma)
        _non_negative(where, weight_decay=self.weight_decay, grad_clip=self.grad_clip)
        _validate_adam_multistep(where, self.betas, self.milestones)


@dataclass
class TrainLoopConfig:
    """The loop: total steps, global batch (split over DDP ranks), seed and intervals."""

    steps: int = 500_000
    batch_size: int = 16
    seed: int = 10
    device: str = "auto"
    threads: int = 1
    """Torch intra-op threads per training process on a CPU (one step of the quick recipe took
    14.5 s with torch's default of one per core on 2 cores, 0.43 s with 1: benchmarks/README)."""
    log_every: int = 100
    image_every: int = 5_000
    checkpoint_every: int = 5_000
    keep_checkpoints: int = 3

    def validate(self, where: str) -> None:
        _positive(where, steps=self.steps, batch_size=self.batch_size, threads=self.threads,
                  log_every=self.log_every,
                  image_every=self.image_every, checkpoint_every=self.checkpoint_every,
                  keep_checkpoints=self.keep_checkpoints)
        if self.seed < 0:
            raise ConfigError(f"{where}.seed must be >= 0, got {self.seed}")
        if self.device != "auto" and not re.match(r"^(cpu|cuda(:\d+)?)$", self.device):
            raise ConfigError(f"{where}.device must be auto, cpu, cuda or cuda:N, got "
                              f"{self.device!r}")


@dataclass
class ValidationConfig:
    """Validation on the val pairs: PSNR, MS-SSIM, LPIPS (squeeze) of decoded and enhanced.

    `metric` picks `best.safetensors` (LPIPS: lower is better; PSNR, MS-SSIM: higher).
    `max_images` > 0 validates on that many images spread evenly over the sorted set.
    `lpips_weights` is the squeeze backbone file; empty means
    ``$INNRSIC_WEIGHTS_DIR/squeeze.backbone.pth``.
    """

    every: int = 5_000
    temperature: float = 1.0
    seed: int = 0
    max_images: int = 0
    metric: Literal["lpips", "psnr", "ms_ssim"] = "lpips"
    lpips_weights: str = ""

    def validate(self, where: str) -> None:
        _positive(where, every=self.every)
        _non_negative(where, temperature=self.temperature, max_images=self.max_images,
                      seed=self.seed)


@dataclass
class RunConfig:
    """The start of every training config: `run_dir`, which receives all outputs."""

    run_dir: str

    def validate(self, where: str) -> None:
        if not self.run_dir:
            raise ConfigError("run_dir must not be empty")


@dataclass
class EnhancerTrainingConfig(RunConfig):
    """Everything `innrsic train enhancer` needs."""

    run_dir: str = "runs/enhancer"
    model: EnhancerModelConfig = field(default_factory=EnhancerModelConfig)
    data: PairsDataConfig = field(default_factory=PairsDataConfig)
    loss: EnhancerLossConfig = field(default_factory=EnhancerLossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    val: ValidationConfig = field(default_factory=ValidationConfig)


# --------------------------------------------------------------------------------------------
# Schema: learned-codec training (ELIC as the paper uses it; CompressAI's recipe where it is
# silent)
# --------------------------------------------------------------------------------------------

PUBLISHED_ELIC_LAMBDAS = (0.0004, 0.0008, 0.0016, 0.0032, 0.01, 0.045)
ELIC_GROUPS_HEAD = (16, 16, 32, 64)  # ELIC's uneven groups; the last one takes M - 128


@dataclass
class CodecModelConfig:
    """A CompressAI architecture by name and its size; the defaults are ELIC as published.

    `arch` is a learned codec name (`elic`, `bmshj2018-hyperprior`, `mbt2018-mean`, ...; see
    `innrsic.codecs.architectures`). `N` and `M` are CompressAI's constructor arguments (main and
    latent channels). `groups` (ELIC only) splits the M latent channels; empty means ELIC's
    16, 16, 32, 64, M - 128. cheng2020 models have N latent channels, so their M must equal N.
    """

    arch: str = "elic"
    N: int = 192
    M: int = 320
    groups: list[int] = field(default_factory=list)

    def validate(self, where: str) -> None:
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"{where}.arch must be one of {', '.join(ARCHITECTURES)}, got "
                              f"{self.arch!r}")
        _positive(where, N=self.N, M=self.M)
        architecture = ARCHITECTURES[self.arch]
        if architecture.has_groups:
            groups = self.resolved_groups()
            if not groups:
                raise ConfigError(f"{where}.groups must be given when M <= {sum(ELIC_GROUPS_HEAD)} "
                                  f"(ELIC's default split needs more channels), got M={self.M}")
            if any(g <= 0 for g in groups) or sum(groups) != self.M:
                raise ConfigError(f"{where}.groups must be positive and sum to M={self.M}, got "
                                  f"{groups}")
        elif self.groups:
            raise ConfigError(f"{where}.groups applies to elic only, not {self.arch}")
        if architecture.latent_channels == "N" and self.M != self.N:
            raise ConfigError(f"{where}: {self.arch} has N latent channels; set M={self.N} "
                              f"(got M={self.M})")

    def resolved_groups(self) -> list[int]:
        """ELIC's channel groups: as configured, else the published split (empty if M too small)."""
        if self.groups:
            return list(self.groups)
        rest = self.M - sum(ELIC_GROUPS_HEAD)
        return [*ELIC_GROUPS_HEAD, rest] if rest > 0 else []

    def constructor_args(self) -> dict[str, Any]:
        """Keyword arguments of the CompressAI class."""
        values = {"N": self.N, "M": self.M, "groups": self.resolved_groups()}
        return {name: values[name] for name in ARCHITECTURES[self.arch].constructor_args}

    @property
    def pad_multiple(self) -> int:
        """Training crops must be multiples of this (the networks' total downsampling)."""
        return ARCHITECTURES[self.arch].downsampling


@dataclass
class ImageDataConfig:
    """Ground-truth images for learned-codec training and validation.

    Entries of `train` and `val` are split names (``ucmerced-train``, ``ucmerced-test``,
    ``dota-test``; see `innrsic.data.splits`), found in `root` (the shared data folder; empty
    means ``$INNRSIC_DATA_ROOT``), or folders of images (relative ones resolve against `root`
    when it is set, else the current directory). An empty `val` disables validation. Training
    images smaller than `crop_size` on a side are skipped (a few UC Merced images are).
    """

    train: list[str] = field(default_factory=lambda: ["ucmerced-train"])
    val: str = "ucmerced-test"
    root: str = ""
    crop_size: int = 256
    workers: int = 4

    def validate(self, where: str) -> None:
        if not self.train:
            raise ConfigError(f"{where}.train is required: split names or image folders")
        _positive(where, crop_size=self.crop_size)
        _non_negative(where, workers=self.workers)

    def resolve(self, directory: str) -> Path:
        """An image folder from this section, made absolute (see the class doc)."""
        return _resolve_under(self.root, directory)


@dataclass
class CodecLossConfig:
    """``lmbda * 255^2 * MSE + bpp`` (CompressAI's RateDistortionLoss; MSE on [0, 1] images,
    bpp from the likelihoods). `lmbda` has no default: the paper's rate points are
    0.0004, 0.0008, 0.0016, 0.0032, 0.01 and 0.045, one model each."""

    lmbda: float = 0.0

    def validate(self, where: str) -> None:
        if self.lmbda <= 0:
            raise ConfigError(
                f"{where}.lmbda is required and must be > 0 (the paper's rate points: "
                f"{', '.join(map(str, PUBLISHED_ELIC_LAMBDAS))}), got {self.lmbda}"
            )


@dataclass
class CodecOptimConfig:
    """Adam on the network, a second Adam on the entropy bottleneck's ``quantiles`` (the
    auxiliary loss), gradient-norm clipping, and MultiStepLR on the main learning rate.

    The paper does not publish ELIC's optimisation; these defaults follow CompressAI's
    ``examples/train.py`` (Adam lr 1e-4, auxiliary lr 1e-3, clip 1.0) and its model-zoo notes
    (lr 1e-4 for the first 1-2M steps, then halved when the loss plateaus; 4-5M steps): the
    plateaus are stood in for by fixed halvings at 2M, 3M and 3.5M of 4M steps.
    """

    lr: float = 1e-4
    aux_lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    milestones: list[int] = field(default_factory=lambda: [2_000_000, 3_000_000, 3_500_000])
    gamma: float = 0.5
    grad_clip: float = 1.0

    def validate(self, where: str) -> None:
        _positive(where, lr=self.lr, aux_lr=self.aux_lr, gamma=self.gamma)
        _non_negative(where, grad_clip=self.grad_clip)
        _validate_adam_multistep(where, self.betas, self.milestones)


@dataclass
class CodecTrainLoopConfig(TrainLoopConfig):
    """The loop for codecs: 4M steps (CompressAI's model zoo: 4-5M) of batch 16 (16 or 32)."""

    steps: int = 4_000_000


@dataclass
class CodecValidationConfig:
    """Validation on `data.val` through the real codec: bpp from the entropy-coded bytes,
    PSNR of the image decoded from them, and the likelihood-estimated bpp beside it.

    `max_images` > 0 validates on that many images spread evenly over the sorted set (the
    default, 21, is about one per UC Merced class: entropy coding runs on one CPU thread for
    bit-exact decoding, a few seconds per 256x256 image for the full ELIC); 0 uses them all.
    """

    every: int = 5_000
    max_images: int = 21

    def validate(self, where: str) -> None:
        _positive(where, every=self.every)
        _non_negative(where, max_images=self.max_images)


@dataclass
class CodecTrainingConfig(RunConfig):
    """Everything `innrsic train codec` needs."""

    run_dir: str = "runs/codec"
    model: CodecModelConfig = field(default_factory=CodecModelConfig)
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    loss: CodecLossConfig = field(default_factory=CodecLossConfig)
    optim: CodecOptimConfig = field(default_factory=CodecOptimConfig)
    train: CodecTrainLoopConfig = field(default_factory=CodecTrainLoopConfig)
    val: CodecValidationConfig = field(default_factory=CodecValidationConfig)

    def validate(self, where: str) -> None:
        super().validate(where)
        multiple = self.model.pad_multiple
        if self.data.crop_size % multiple:
            raise ConfigError(f"data.crop_size must be a multiple of {multiple} for "
                              f"{self.model.arch}, got {self.data.crop_size}")


TrainingConfig = EnhancerTrainingConfig | CodecTrainingConfig


# --------------------------------------------------------------------------------------------
# Loading machinery (works for any dataclass schema)
# --------------------------------------------------------------------------------------------


def load_config(
    schema: type[T],
    path: str | os.PathLike[str] | None = None,
    overrides: Iterable[str] = (),
) -> T:
    """Build `schema` from its defaults, the YAML file at `path` (if any), then `overrides`."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml_mapping(path)
    for item in overrides:
        apply_override(data, item)
    return from_dict(schema, data)


def read_yaml_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping (an empty file is an empty mapping)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into (["a", "b"], value parsed with YAML safe scalar rules)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form section.key=value")
    parts = key.split(".")
    if any(not part for part in parts):
        raise ConfigError(f"override {item!r}: key {key!r} has an empty part")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
    if value is None and raw.strip() not in ("null", "~", "Null", "NULL"):
        value = raw
    return parts, value


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set the field named by ``a.b=value`` in the nested mapping `data` (in place)."""
    parts, value = parse_override(item)
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"override {item!r}: {where!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def from_dict(schema: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Validate `data` against the dataclass `schema` and build it (missing keys keep defaults)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(schema)
    known = {f.name: f for f in fields(schema)}  # type: ignore[arg-type]
    for key in data:
        if key not in known:
            name = f"{where}.{key}" if where else str(key)
            section = f" in {where!r}" if where else ""
            raise ConfigError(
                f"unknown config key {name!r}; valid keys{section}: {', '.join(known)}"
            )
    values = {
        key: _convert(hints[key], value, f"{where}.{key}" if where else key)
        for key, value in data.items()
    }
    instance = schema(**values)
    for name in known:
        sub = getattr(instance, name)
        if is_dataclass(sub) and name not in values:
            _validate_tree(sub, f"{where}.{name}" if where else name)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        validate(where or "config")
    return instance


def _validate_tree(instance: Any, where: str) -> None:
    for f in fields(instance):
        sub = getattr(instance, f.name)
        if is_dataclass(sub):
            _validate_tree(sub, f"{where}.{f.name}")
    validate = getattr(instance, "validate", None)
    if callable(validate):
        validate(where)


def _type_name(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(kind))
    if origin in (list, tuple):
        return f"list of {_type_name(typing.get_args(kind)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(kind))
    if kind is type(None):
        return "null"
    return getattr(kind, "__name__", str(kind))


def _convert(kind: Any, value: Any, where: str) -> Any:
    """Check `value` against the annotation `kind`; return it converted (int -> float etc.)."""
    origin = typing.get_origin(kind)
    if is_dataclass(kind):
        return from_dict(kind, value, where)  # type: ignore[arg-type]
    if origin is Literal:
        choices = typing.get_args(kind)
        if value not in choices or isinstance(value, bool):
            raise ConfigError(f"{where} must be {_type_name(kind)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(kind):
            try:
                return _convert(option, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} must be {_type_name(kind)}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a {_type_name(kind)}, got {value!r}")
        item_kind = typing.get_args(kind)[0]
        return [_convert(item_kind, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if kind is type(None):
        if value is not None:
            raise ConfigError(f"{where} must be null, got {value!r}")
        return None
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {kind!r}")  # a schema bug


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain nested dicts and lists (YAML/JSON-safe)."""
    return dataclasses.asdict(config)


def config_to_yaml(config: Any) -> str:
    """The full resolved config as YAML text (every field, defaults included)."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def config_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Dotted names of the fields that differ between two `config_to_dict` results."""
    names: list[str] = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            names.extend(config_differences(a, b, f"{name}."))
        elif a != b:
            names.append(name)
    return names


def _validate_adam_multistep(where: str, betas: list[float], milestones: list[int]) -> None:
    """The checks every optim section shares: Adam's two betas, MultiStepLR's milestones."""
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ConfigError(f"{where}.betas must be two numbers in [0, 1), got {betas}")
    if list(milestones) != sorted(set(milestones)) or any(m <= 0 for m in milestones):
        raise ConfigError(
            f"{where}.milestones must be strictly increasing positive steps, got {milestones}"
        )


def _resolve_under(root: str, directory: str) -> Path:
    """`directory` made absolute: a relative one lies under `root` when it is set."""
    path = Path(directory).expanduser()
    if not path.is_absolute() and root:
        path = Path(root).expanduser() / path
    return path.resolve()


def _positive(where: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{where}.{name} must be > 0, got {value}")


def _non_negative(where: str, **values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise ConfigError(f"{where}.{name} must be >= 0, got {value}")
