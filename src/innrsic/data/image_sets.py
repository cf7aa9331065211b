"""Image sets named by one word: a documented split under the shared data folder, or a folder.

A name in `SPLITS` (or a reserved one, which `resolve_split` refuses) is a split found under the
data root (given, else ``$INNRSIC_DATA_ROOT``); anything else is a folder of images.
"""

from __future__ import annotations

import os
from pathlib import Path

from innrsic.data.splits import RESERVED, SPLITS, ImageRef, folder_images, resolve_split

DATA_ROOT_VARIABLE = "INNRSIC_DATA_ROOT"

PathLike = str | os.PathLike[str]


def data_root(given: PathLike | None) -> PathLike | None:
    """The shared data folder for split names: `given`, else ``$INNRSIC_DATA_ROOT``."""
    return given or os.environ.get(DATA_ROOT_VARIABLE)


def is_split(name: PathLike) -> bool:
    """Whether `name` is a split name (documented or reserved) rather than a folder."""
    return name in SPLITS or name in RESERVED


def image_set(
    data: PathLike, root: PathLike | None = None, limit: int | None = None
) -> list[ImageRef]:
    """The images `data` names (module doc), only the first `limit` of them when given."""
    refs = resolve_split(str(data), data_root(root)) if is_split(data) else folder_images(data)
    return refs if limit is None else refs[: max(0, limit)]


def describe_image_set(data: str, root: PathLike | None, count: int) -> str:
    """How a report names `count` images of `data`: the split and its data root, or the folder."""
    if data in SPLITS:
        return f"{data} ({count} images of the split, data root {data_root(root)})"
    folder = Path(data).resolve()
    return f"{folder.name} ({count} images under {folder})"
