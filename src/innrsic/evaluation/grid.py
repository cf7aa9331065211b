"""What an evaluation grid is made of: codec specs, enhancers, temperatures, shards, seeds.

A *combination* is (codec spec, enhancer, temperature, seed); the decoded image of a codec
spec is the combination with no enhancer. A *control* (decoded + noise, decoded + unsharp mask;
`innrsic.evaluation.controls`) takes an enhancer's place with the id ``control:<kind>`` and no
temperature or seed. A *curve* groups the combinations of one codec
family (the spec without its rate parameter) and one (enhancer, temperature, seed): its
points are the family's rates, e.g. ``jpeg2000:bpp=0.1/0.2/0.4``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from innrsic.codecs import CodecSpec, make_codec
from innrsic.codecs.registry import CODECS, codec_class
from innrsic.errors import ConfigError
from innrsic.pretrained import check_temperature

_UNSAFE = re.compile(r"[^A-Za-z0-9.=+-]+")
CONTROL_PREFIX = "control:"


@functools.cache
def rate_params() -> frozenset[str]:
    """Spec parameters that set a codec's rate, as the codecs name them (`rate_params` of each
    codec class): they vary along a curve, the others define it."""
    return frozenset(param for name in CODECS for param in codec_class(name).rate_params())


def control_id(kind: str) -> str:
    """The enhancer id a control's rows carry: ``noise`` -> ``control:noise``."""
    return CONTROL_PREFIX + kind


def is_control(enhancer_id: str) -> bool:
    return enhancer_id.startswith(CONTROL_PREFIX)


def slug(text: str) -> str:
    """A file-name-safe form of `text` (``jpeg2000:bpp=0.1`` -> ``jpeg2000_bpp=0.1``)."""
    return _UNSAFE.sub("_", text).strip("_") or "_"


@dataclass(frozen=True)
class CodecEntry:
    """A codec spec in canonical form, its family (curve) and its rate label (point)."""

    spec: str
    family: str
    rate: str

    @property
    def slug(self) -> str:
        return slug(self.spec)


def codec_entry(spec: str) -> CodecEntry:
    """Canonicalise `spec` through the registry (aliases, number formats) and split it into
    family and rate. Raises CodecSpecError for an unknown codec or parameter."""
    canonical = make_codec(spec).spec
    return entry_from_canonical(canonical)


def entry_from_canonical(canonical: str) -> CodecEntry:
    """Family and rate of an already canonical spec (as stored in result rows)."""
    parsed = CodecSpec.parse(canonical)
    rates = rate_params()
    rest = {k: v for k, v in parsed.params.items() if k not in rates}
    rate = ",".join(f"{k}={v}" for k, v in parsed.params.items() if k in rates)
    return CodecEntry(canonical, str(CodecSpec(parsed.name, rest)), rate or "default")


def codec_entries(specs: list[str] | tuple[str, ...]) -> list[CodecEntry]:
    """Canonical entries for `specs`, duplicates removed (first kept); slugs must be unique."""
    entries: dict[str, CodecEntry] = {}
    for spec in specs:
        entry = codec_entry(spec)
        entries.setdefault(entry.spec, entry)
    slugs: dict[str, str] = {}
    for entry in entries.values():
        other = slugs.setdefault(entry.slug, entry.spec)
        if other != entry.spec:
            raise ConfigError(f"codec specs {other!r} and {entry.spec!r} map to the same cache "
                              f"folder name {entry.slug!r}; rename one")
    return list(entries.values())


@dataclass(frozen=True)
class EnhancerEntry:
    """An enhancer weights file, identified by the hash of its bytes."""

    path: Path
    id: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id[:8]})"


def file_id(path: str | os.PathLike[str]) -> str:
    """The first 16 hex digits of the SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def enhancer_entry(path: str | os.PathLike[str]) -> EnhancerEntry:
    """An entry for the enhancer weights at `path` (which must exist)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"enhancer weights not found: {path}")
    return EnhancerEntry(path, file_id(path), path.stem)


def check_temperatures(temperatures: list[float] | tuple[float, ...]) -> tuple[float, ...]:
    """Temperatures as floats, duplicates removed; each must be finite and >= 0."""
    result: list[float] = []
    for given in temperatures:
        value = check_temperature(float(given))
        if value not in result:
            result.append(value)
    return tuple(result)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ConfigError(f"--shard must look like i/n (e.g. 0/4), got {text!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or index >= count:
        raise ConfigError(f"--shard {text}: need 0 <= i < n")
    return index, count


def shard_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> tuple[int, int]:
    """(RANK, WORLD_SIZE) set by torchrun, or (0, 1)."""
    environ = os.environ if environ is None else environ
    if "RANK" in environ and "WORLD_SIZE" in environ:
        try:
            return parse_shard(f"{environ['RANK']}/{environ['WORLD_SIZE']}")
        except ConfigError as exc:
            raise ConfigError(f"RANK/WORLD_SIZE from the environment: {exc}") from exc
    return 0, 1


def image_seed(seed: int, image_name: str) -> int:
    """A seed of one image: a 63-bit hash of (seed, image name); the controls draw their noise
    with it. It depends on nothing else, so results do not change with sharding or image order,
    and all codec specs of an image share their draw (fewer random differences between them).
    """
    digest = hashlib.sha256(f"{int(seed)}\0{image_name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def temperature_text(temperature: float) -> str:
    """``0.0`` -> ``"0"``, ``0.5`` -> ``"0.5"``: for labels and folder names."""
    return f"{temperature:g}"
