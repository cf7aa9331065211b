"""Where learned-codec weights are found: by file name in the model directory (``lambda=``
specs) or by fingerprint (what a container records).

**Model directory.** ``lambda=X`` selects the file ``<arch>-lambda<X>.<ext>``, where ``<X>`` is
the lambda as Python prints the float (``0.0008``, ``0.045``, ``1e-05``) and ``<ext>`` is
``safetensors`` (innrsic's format, preferred), ``pth.tar``, ``pth.tar.xz`` or ``pth``, e.g.
``elic-lambda0.0008.safetensors``. It is searched for in ``$INNRSIC_MODEL_DIR`` (several
directories separated by ``os.pathsep``; default ``~/.cache/innrsic/models``).

**By fingerprint** (`find_by_fingerprint`). A container names its weights by fingerprint (the
first `FINGERPRINT_HEX` hex digits of `learned_checkpoint.weights_fingerprint`) and by the
file name they had; decoding looks, in order, at: the hint its caller passes
(``decompress --weights PATH``: a file, or a directory searched like a model directory),
every model directory,
then the files this process has loaded already. In each directory the recorded name is tried
first, then every weights file in it (not its subdirectories). Fingerprints are cached per
file (path, size, modification time), so a directory is read once per process.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from innrsic.errors import WeightsError

MODEL_DIR_ENV = "INNRSIC_MODEL_DIR"
DEFAULT_MODEL_DIR = Path("~/.cache/innrsic/models")
WEIGHT_SUFFIXES = (".safetensors", ".pth.tar", ".pth.tar.xz", ".pth")
FINGERPRINT_HEX = 32
SAFE_NAME = re.compile(r"[A-Za-z0-9._+-]{1,200}")
"""File names a spec can carry (no separators of the spec syntax, no directories)."""

_fingerprints: dict[tuple[str, int, int], str | None] = {}
_loaded: dict[str, Path] = {}


def model_dirs() -> list[Path]:
    """Where weights are searched, in order (see the module doc)."""
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        dirs = [Path(part).expanduser() for part in override.split(os.pathsep) if part]
    else:
        dirs = [DEFAULT_MODEL_DIR.expanduser()]
    return dirs


def weights_file_name(arch: str, lmbda: float, suffix: str = ".safetensors") -> str:
    """The model-directory file name for `arch` trained at `lmbda`."""
    return f"{arch}-lambda{float(lmbda)!r}{suffix}"


def find_weights(arch: str, lmbda: float) -> Path:
    """The weights file for `arch` at `lmbda`, or a WeightsError naming every place looked in."""
    dirs = model_dirs()
    for directory in dirs:
        for suffix in WEIGHT_SUFFIXES:
            path = directory / weights_file_name(arch, lmbda, suffix)
            if path.is_file():
                return path
    names = ", ".join(weights_file_name(arch, lmbda, suffix) for suffix in WEIGHT_SUFFIXES)
    howto = f"train them with `innrsic train codec --config configs/codec/{arch}_{lmbda!r}.yaml`"
    if arch == "elic":
        howto += " or convert the authors' ELIC checkpoint with `innrsic convert-checkpoint`"
    raise WeightsError(
        f"{arch}: no weights for lambda={lmbda!r}: looked for {names} in "
        f"{', '.join(str(d) for d in dirs)}; {howto}, saving to "
        f"{dirs[0] / weights_file_name(arch, lmbda)} (${MODEL_DIR_ENV} sets the directory), "
        "or give weights=PATH"
    )


def short_fingerprint(fingerprint: bytes) -> str:
    """The fingerprint as a spec records it."""
    return fingerprint.hex()[:FINGERPRINT_HEX]


def remember(path: Path, fingerprint: bytes) -> None:
    """Note a weights file this process loaded (searched before the model directories)."""
    _loaded.setdefault(short_fingerprint(fingerprint), path)


def file_fingerprint(path: Path, arch: str) -> str | None:
    """The short fingerprint of a weights file of `arch`, or None if it is not one (cached)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _fingerprints:
        from innrsic.codecs.learned_checkpoint import native_state, weights_fingerprint

        try:
            state = native_state(path, arch)[3]
        except WeightsError:
            _fingerprints[key] = None
        else:
            _fingerprints[key] = short_fingerprint(weights_fingerprint(state))
    return _fingerprints[key]


def _candidates(directory: Path, name: str | None) -> list[Path]:
    first = [directory / name] if name else []
    try:
        rest = sorted(p for p in directory.iterdir() if p.name.endswith(WEIGHT_SUFFIXES))
    except OSError:
        rest = []
    return [p for p in first if p.is_file()] + [p for p in rest if p not in first and p.is_file()]


def find_by_fingerprint(
    arch: str, fingerprint: str, name: str | None = None, hint: Path | None = None
) -> Path:
    """The weights file of `arch` whose fingerprint starts with `fingerprint` (module doc)."""
    places: list[str] = []
    searched: list[Path] = []
    for where in [hint.expanduser()] if hint is not None else []:
        places.append(str(where))
        searched += _candidates(where, name) if where.is_dir() else [where]
    for directory in model_dirs():
        places.append(str(directory))
        searched += _candidates(directory, name)
    if fingerprint in _loaded:
        searched.append(_loaded[fingerprint])
    for path in searched:
        if file_fingerprint(path, arch) == fingerprint:
            return path
    called = f" (saved as {name})" if name else ""
    raise WeightsError(
        f"{arch}: no weights file with fingerprint {fingerprint}{called} in "
        f"{', '.join(places)}; give decompress --weights PATH or put the file in "
        f"${MODEL_DIR_ENV}"
    )
