"""Enhancers shipped inside the package: weights, a JSON record and a model card each.

Every ``<name>.json`` in this folder describes one model::

    {"name": "...", "kind": "enhancer", "codec": "jpeg2000:bpp=0.1",
     "default_temperature": 0.0, "weights": "<name>.safetensors", "card": "<name>.md",
     "sha256": "<hex digest of the weights file>", "summary": "one line"}

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
    "default_temperature",
    "weights",
    "card",
    "sha256",
    "summary",
)
_RATE = re.compile(r"\bbpp=([0-9.]+)")


@dataclass(frozen=True)
class PretrainedModel:
    """One shipped model: what it was trained behind and where its files are."""

    name: str
    """What users pass (``--enhance NAME``, ``load_enhancer(NAME)``)."""
    kind: str
    """``enhancer``."""
    codec: str
    """The codec spec it was trained behind, e.g. ``jpeg2000:bpp=0.2``."""
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


def model_for_codec(spec: str, folder: Path = PRETRAINED_DIR) -> PretrainedModel | None:
    """The shipped enhancer for a codec spec: same codec family, nearest trained rate."""
    family = spec.split(":", 1)[0]
    match = _RATE.search(spec)
    candidates = [m for m in installed_models(folder) if m.codec_family == family]
    if not candidates:
        return None
    if match is None:
        return candidates[0] if len(candidates) == 1 else None
    rate = float(match.group(1))
    return min(candidates, key=lambda m: abs((m.bpp or 0.0) - rate))


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
