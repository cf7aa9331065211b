"""The manifest of a pairs directory (`innrsic.data.pairs`): its format, reading and writing.

``manifest.json`` ({"format", "version", "codec", "count", "mean_bpp", "entries": [...]}) is the
source of truth; ``manifest.csv`` holds the same entries as a table. Each entry records the
source file and box, the image size, the payload size in bytes and the achieved payload bpp.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from innrsic.atomic import write_bytes_atomic
from innrsic.errors import ConfigError

MANIFEST_JSON = "manifest.json"
MANIFEST_CSV = "manifest.csv"
FORMAT_NAME = "innrsic-pairs"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PairEntry:
    """One pair: file paths are relative to the pairs directory."""

    name: str
    source: str
    box: tuple[int, int, int, int] | None
    gt: str
    decoded: str
    height: int
    width: int
    payload_bytes: int
    bpp: float

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["box"] = list(self.box) if self.box is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PairEntry:
        box = data.get("box")
        return cls(
            name=str(data["name"]),
            source=str(data["source"]),
            box=tuple(int(v) for v in box) if box is not None else None,  # type: ignore[arg-type]
            gt=str(data["gt"]),
            decoded=str(data["decoded"]),
            height=int(data["height"]),
            width=int(data["width"]),
            payload_bytes=int(data["payload_bytes"]),
            bpp=float(data["bpp"]),
        )


@dataclass
class PairsManifest:
    """A pairs directory's manifest: the codec spec and its entries in generation order."""

    codec: str
    entries: list[PairEntry] = field(default_factory=list)

    @property
    def mean_bpp(self) -> float:
        return sum(e.bpp for e in self.entries) / len(self.entries) if self.entries else 0.0


def read_pairs_manifest(directory: str | os.PathLike[str]) -> PairsManifest:
    """Read ``manifest.json`` of a pairs directory (ConfigError if absent or malformed)."""
    path = Path(directory) / MANIFEST_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path.parent}: not a pairs directory (no {MANIFEST_JSON}); make one with "
            "`innrsic pairs --codec SPEC --data SPLIT_OR_DIR --out DIR`"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable pairs manifest ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ConfigError(f"{path}: not an innrsic pairs manifest")
    if data.get("version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: pairs manifest version {data.get('version')!r}; this innrsic "
                          f"reads version {FORMAT_VERSION}")
    try:
        entries = [PairEntry.from_json(item) for item in data["entries"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: malformed manifest entry ({exc})") from exc
    return PairsManifest(str(data["codec"]), entries)


def write_pairs_manifest(directory: str | os.PathLike[str], manifest: PairsManifest) -> None:
    """Write ``manifest.json`` and ``manifest.csv`` atomically."""
    directory = Path(directory)
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "codec": manifest.codec,
        "count": len(manifest.entries),
        "mean_bpp": manifest.mean_bpp,
        "entries": [e.to_json() for e in manifest.entries],
    }
    write_bytes_atomic(directory / MANIFEST_JSON, (json.dumps(payload, indent=1) + "\n").encode())
    buffer = io.StringIO()
    columns = ["name", "gt", "decoded", "height", "width", "payload_bytes", "bpp", "source", "box"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for entry in manifest.entries:
        row = entry.to_json()
        row["box"] = " ".join(map(str, entry.box)) if entry.box is not None else ""
        row["bpp"] = f"{entry.bpp:.6f}"
        writer.writerow({key: row[key] for key in columns})
    write_bytes_atomic(directory / MANIFEST_CSV, buffer.getvalue().encode())
