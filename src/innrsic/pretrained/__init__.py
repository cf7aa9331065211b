"""Enhancers shipped inside the package: weights, a JSON record and a model card each.

Every ``<name>.json`` in this folder describes one model::

    {"name": "...", "kind": "enhancer", "codec": "jpeg2000:bpp=0.1",
     "covers": {"codecs": ["jpeg2000"], "bpp": [0.05, 0.14]},
     "default_temperature": 0.0, "weights": "<name>.safetensors", "card": "<name>.md",
     "sha256": "<hex digest of the weights file>", "summary": "one line"}

``covers`` is what the model is meant to restore: codec names and a payload rate range
``[low, high)`` in bits per pixel. `model_for_codec` picks a model for a stream from it (the
``auto`` choice of ``decompress --enhance`` and ``enhance --codec``): among the models that
cover the codec and rate, the most specialised one (narrowest rate range).

`installed_models` reads them all (a record whose weights are missing or altered raises
WeightsError rather than being used); `resolve_enhancer` turns what a user typed (a shipped
name or a weights path) into a weights file; `record_for_weights` finds the record of a
weights file named by its path (the fallback for files whose metadata lacks the default
temperature and codec, `innrsic.enhancer.weights_file`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from innrsic.errors import ConfigError, WeightsError

PRETRAINED_DIR = Path(__file__).resolve().parent
RECORD_KEYS = (
    "name",
    "kind",
    "codec",
    "covers",
    "default_temperature",
    "weights",
    "card",
    "sha256",
    "summary",
)
_RATE = re.compile(r"\bbpp=([0-9.]+)")
AUTO = "auto"
"""The model name that picks, per file, the shipped model covering its codec and payload rate
(`model_for_codec`)."""


@dataclass(frozen=True)
class Coverage:
    """The codecs and payload rates ``[low, high)`` bpp a model is meant to restore."""

    codecs: tuple[str, ...]
    bpp: tuple[float, float]

    def covers(self, codec: str, bpp: float) -> bool:
        """Whether a `codec` stream (codec name) at `bpp` is in this coverage."""
        return codec in self.codecs and self.bpp[0] <= bpp < self.bpp[1]

    @property
    def breadth(self) -> float:
        """How wide the rate range is (the ratio high / low): smaller is more specialised."""
        return self.bpp[1] / self.bpp[0]

    def text(self) -> str:
        """E.g. ``jpeg2000 0.05-0.14 bpp``."""
        return f"{','.join(self.codecs)} {self.bpp[0]:g}-{self.bpp[1]:g} bpp"


@dataclass(frozen=True)
class PretrainedModel:
    """One shipped model: what it was trained behind and where its files are."""

    name: str
    """What users pass (``--enhance NAME``, ``load_enhancer(NAME)``)."""
    kind: str
    """``enhancer``."""
    codec: str
    """The codec spec it was trained behind, e.g. ``jpeg2000:bpp=0.2``."""
    covers: Coverage
    """The codecs and rates it is chosen for (`model_for_codec`)."""
    default_temperature: float
    """The temperature used when none is given."""
    weights: Path
    card: Path
    """The model card (Markdown): training, measurements, recipe."""
    sha256: str
    """Digest of the weights file, checked by `verify`."""
    summary: str

    @property
    def codec_family(self) -> str:
        """The codec name without parameters, e.g. ``jpeg2000``."""
        return self.codec.split(":", 1)[0]

    @property
    def bpp(self) -> float | None:
        """The target rate of the codec spec, when it has one."""
        match = _RATE.search(self.codec)
        return float(match.group(1)) if match else None

    def verify(self) -> None:
        """Raise WeightsError unless the weights file exists and has the recorded digest."""
        if not self.weights.is_file():
            raise WeightsError(f"shipped model {self.name}: weights {self.weights} are missing")
        digest = hashlib.sha256(self.weights.read_bytes()).hexdigest()
        if digest != self.sha256:
            raise WeightsError(
                f"shipped model {self.name}: {self.weights} has sha256 {digest}, the record "
                f"says {self.sha256} (file altered or replaced)"
            )


def _read_coverage(path: Path, covers: object) -> Coverage:
    try:
        codecs = tuple(str(name) for name in covers["codecs"])  # type: ignore[index]
        low, high = (float(value) for value in covers["bpp"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: covers must be {{\"codecs\": [names], \"bpp\": "
                           f"[low, high]}} ({exc})") from exc
    if not codecs or not 0 < low < high:
        raise WeightsError(f"{path}: covers needs codec names and 0 < low < high bpp")
    return Coverage(codecs, (low, high))


def _read_record(path: Path) -> PretrainedModel:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: unreadable model record ({exc})") from exc
    if not isinstance(record, dict) or set(record) != set(RECORD_KEYS):
        keys = ", ".join(RECORD_KEYS)
        raise WeightsError(f"{path}: a model record needs exactly the keys {keys}")
    return PretrainedModel(
        name=str(record["name"]),
        kind=str(record["kind"]),
        codec=str(record["codec"]),
        covers=_read_coverage(path, record["covers"]),
        default_temperature=float(record["default_temperature"]),
        weights=path.parent / str(record["weights"]),
        card=path.parent / str(record["card"]),
        sha256=str(record["sha256"]),
        summary=str(record["summary"]),
    )


def installed_models(folder: Path = PRETRAINED_DIR) -> list[PretrainedModel]:
    """Every shipped model in `folder`, sorted by name, each verified against its digest."""
    models = sorted((_read_record(p) for p in folder.glob("*.json")), key=lambda m: m.name)
    for model in models:
        model.verify()
    return models


def find_model(name: str, folder: Path = PRETRAINED_DIR) -> PretrainedModel:
    """The shipped model called `name`; WeightsError listing what is installed otherwise."""
    models = installed_models(folder)
    for model in models:
        if model.name == name:
            return model
    names = ", ".join(m.name for m in models) or "none"
    raise WeightsError(f"no shipped model named {name!r}; installed: {names}")


def model_for_codec(
    spec: str, bpp: float | None = None, folder: Path = PRETRAINED_DIR
) -> PretrainedModel | None:
    """The shipped enhancer for a stream of codec `spec` (canonical codec name) at payload rate
    `bpp` (default: the spec's ``bpp=``): the most specialised model whose coverage holds it,
    None where none does or the rate is unknown."""
    family = spec.split(":", 1)[0]
    if bpp is None:
        match = _RATE.search(spec)
        bpp = float(match.group(1)) if match else None
    if bpp is None:
        return None
    candidates = [m for m in installed_models(folder) if m.covers.covers(family, bpp)]
    return min(candidates, key=lambda m: m.covers.breadth, default=None)


def covered_text(folder: Path = PRETRAINED_DIR) -> str:
    """What the shipped models cover, for messages: ``name (jpeg2000 0.05-0.14 bpp), ...``."""
    models = installed_models(folder)
    return ", ".join(f"{m.name} ({m.covers.text()})" for m in models) or "no models installed"


def check_temperature(value: object) -> float:
    """`value` as an enhancer temperature: a finite number >= 0, else ConfigError."""
    try:
        temperature = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        temperature = math.nan
    if isinstance(value, bool) or not math.isfinite(temperature) or temperature < 0:
        raise ConfigError(f"temperature must be a finite number >= 0, got {value!r}")
    return temperature


def record_for_weights(path: Path) -> PretrainedModel | None:
    """The record beside weights file `path` that names it and matches its digest, if any."""
    path = Path(path)
    digest: str | None = None
    for candidate in sorted(path.parent.glob("*.json")):
        try:
            model = _read_record(candidate)
        except WeightsError:
            continue
        if model.weights.name != path.name:
            continue
        digest = digest or hashlib.sha256(path.read_bytes()).hexdigest()
        if model.sha256 == digest:
            return model
    return None


def resolve_enhancer(name_or_path: str, folder: Path = PRETRAINED_DIR) -> tuple[Path, float | None]:
    """A weights file for `name_or_path` and the model's default temperature (None for paths;
    `innrsic.enhancer.load_enhancer` reads a path's default from the file)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path, None
    try:
        model = find_model(name_or_path, folder)
    except WeightsError as exc:
        raise WeightsError(f"{name_or_path}: no such weights file; {exc}") from None
    return model.weights, model.default_temperature
