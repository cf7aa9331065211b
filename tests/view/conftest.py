"""The viewer under test: `innrsic view` in a subprocess on a free port, over a copy of the
shared scene fixture (`tests/conftest.py`) and a damaged copy of it."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

MODEL = "enhancer-jpeg2000-bpp0.4"  # the shipped model for the scene fixture's codec


@dataclass
class Viewer:
    """A running `innrsic view`: its base URL (ending in /), process and served files."""

    url: str
    process: subprocess.Popen[str]
    files: dict[str, Path]

    def get(self, path: str) -> tuple[int, bytes, float]:
        """Status, body and seconds of ``GET url + path``."""
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(self.url + path, timeout=300) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        return status, body, time.perf_counter() - start

    def peak_rss_mib(self) -> float:
        """The server's peak resident memory (VmHWM), MiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024


def png_pixels(body: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(body)) as image:
        return np.asarray(image)


def start_viewer(
    cli: list[str], env: dict[str, str], paths: list[Path], log: Path, *options: str
) -> Viewer:
    """`innrsic view PATHS --port 0 --no-browser OPTIONS` in `env`, once it has printed its
    URL (its stderr goes to `log`)."""
    process = subprocess.Popen(
        [*cli, "view", *map(str, paths), "--port", "0", "--no-browser", *options],
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env,
    )
    line = process.stdout.readline() if process.stdout else ""
    if "http://" not in line:
        process.kill()
        pytest.fail(f"innrsic view did not start: {line!r} {log.read_text()[-2000:]}")
    url = line.split(" at ", 1)[1].split()[0]
    return Viewer(url, process, {path.name: path for path in paths})


def damage_last_tile(path: Path) -> None:
    """Flip bytes inside the payload of the file's last tile (the file ends with it and a
    4-byte checksum)."""
    data = bytearray(path.read_bytes())
    for offset in range(len(data) - 44, len(data) - 36):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def viewer(
    scene: dict[str, Path], cli: list[str], thread_env: Callable[[int], dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Viewer]:
    """The viewer serving ``scene.rsic`` (the shared fixture) and ``damaged.rsic``."""
    folder = tmp_path_factory.mktemp("served")
    good = shutil.copy(scene["rsic"], folder / "scene.rsic")
    damaged = shutil.copy(scene["rsic"], folder / "damaged.rsic")
    damage_last_tile(Path(damaged))
    running = start_viewer(cli, thread_env(2), [Path(good), Path(damaged)], folder / "server.log")
    yield running
    running.process.terminate()
    running.process.wait(timeout=30)
