"""Weights by identity: containers name weights by fingerprint and file name, never by path;
decoding finds moved weights (``--weights``, ``$INNRSIC_MODEL_DIR``), says which fingerprint it
could not find, and files of earlier versions (``weights=PATH``, payload format 1) still
decode."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from innrsic.codecs import learned_weights, make_codec
from innrsic.codecs.learned import _HEADER, LEGACY_PAYLOAD_VERSION, _pack
from innrsic.codecs.learned_checkpoint import (
    build_model,
    deterministic_cpu,
    save_learned_checkpoint,
)
from innrsic.codecs.learned_weights import find_by_fingerprint
from innrsic.errors import WeightsError
from innrsic.raster.image import write_image
from innrsic.rsic.coding import compress_image, decompress_container, reconstruction_crc
from innrsic.rsic.container import Container, pack_container, read_container

IMAGE = np.random.default_rng(0).integers(0, 256, (40, 72, 3), dtype=np.uint8)


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the files earlier tests loaded (the search looks at those last)."""
    monkeypatch.setattr(learned_weights, "_loaded", {})


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(3)
    path = tmp_path / "saved" / "mbt-small.safetensors"
    path.parent.mkdir()
    save_learned_checkpoint(build_model("mbt2018-mean", {"N": 8, "M": 12}), "mbt2018-mean", path)
    return path


def _moved(weights: Path, tmp_path: Path, name: str = "renamed.safetensors") -> Path:
    target = tmp_path / "elsewhere" / name
    target.parent.mkdir(exist_ok=True)
    shutil.move(weights, target)
    return target


def test_the_container_names_the_weights_by_fingerprint_and_name_not_by_path(weights: Path):
    container = compress_image(IMAGE, make_codec(f"mbt2018-mean:weights={weights}"))
    spec = container.codec_spec
    assert str(weights.parent) not in spec and "weights=" not in spec
    name, params = spec.split(":")
    fields = dict(item.split("=") for item in params.split(","))
    assert name == "mbt2018-mean" and fields["name"] == weights.name
    assert len(fields["fingerprint"]) == 32


def test_moved_weights_are_found_by_fingerprint_in_the_model_dir(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    container = compress_image(IMAGE, make_codec(f"mbt2018-mean:weights={weights}"))
    moved = _moved(weights, tmp_path)
    monkeypatch.setenv("INNRSIC_MODEL_DIR", str(moved.parent))
    fingerprint = container.codec_spec.split("fingerprint=")[1].split(",")[0]
    assert find_by_fingerprint("mbt2018-mean", fingerprint) == moved
    decoded = decompress_container(container)  # checked against the reconstruction checksum
    assert decoded.shape == IMAGE.shape


def test_no_matching_file_is_one_error_naming_the_fingerprint(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    spec = make_codec(f"mbt2018-mean:weights={weights}").spec
    fingerprint = spec.split("fingerprint=")[1].split(",")[0]
    weights.unlink()
    torch.manual_seed(4)  # other weights under the same name: not a match
    save_learned_checkpoint(build_model("mbt2018-mean", {"N": 8, "M": 12}), "mbt2018-mean",
                            tmp_path / "models" / weights.name)
    monkeypatch.setenv("INNRSIC_MODEL_DIR", str(tmp_path / "models"))
    with pytest.raises(WeightsError, match=f"no weights file with fingerprint {fingerprint}"):
        make_codec(spec, tmp_path / "nowhere")
    with pytest.raises(WeightsError, match=f"fingerprint {fingerprint}") as caught:
        find_by_fingerprint("mbt2018-mean", fingerprint, weights.name, tmp_path / "nowhere")
    message = str(caught.value)
    assert "\n" not in message and "--weights" in message and "INNRSIC_MODEL_DIR" in message


def test_cli_decompress_weights_option_and_exit_2(
    weights: Path, tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch
):
    source = tmp_path / "image.png"
    write_image(source, IMAGE)
    packed = tmp_path / "image.rsic"
    done = run_cli("compress", source, "-o", packed, "--codec", f"mbt2018-mean:weights={weights}")
    assert done.returncode == 0, done.stderr
    moved = _moved(weights, tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "INNRSIC_MODEL_DIR": str(empty)}
    done = run_cli("decompress", packed, "-o", tmp_path / "out.png", env=env)
    assert done.returncode == 2
    assert "no weights file with fingerprint" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.png").exists()
    for hint in (moved, moved.parent):
        done = run_cli("decompress", packed, "-o", tmp_path / "out.png", "--weights", hint,
                       "--force", env=env)
        assert done.returncode == 0, done.stderr
    # decompress --enhance reads the scene through the xarray engine's reader: the same hint
    done = run_cli("decompress", packed, "-o", tmp_path / "enhanced.png", "--weights", moved,
                   "--enhance", "enhancer-jpeg2000-bpp0.2", "--temperature", "0", env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "enhanced.png").is_file()


def _legacy_container(weights: Path) -> Container:
    """A container as innrsic wrote it before payload format 2: ``weights=PATH`` spec,
    CompressAI's float32 network, the fingerprint over the loaded state dict."""
    codec = make_codec(f"mbt2018-mean:weights={weights}")
    loaded = codec.loaded
    x = torch.from_numpy(np.pad(IMAGE, ((0, 24), (0, 56), (0, 0)), mode="edge"))
    x = x.permute(2, 0, 1)[None].float() / 255
    with deterministic_cpu():
        out = loaded.model.compress(x)
        x_hat = loaded.model.decompress(out["strings"], out["shape"])["x_hat"]
    pixels = x_hat[0, :, :40, :72].clamp(0, 1).mul(255).round().to(torch.uint8)
    payload = bytearray(_pack(loaded, 40, 72, [s[0] for s in out["strings"]]))
    payload[0] = LEGACY_PAYLOAD_VERSION
    payload[2:6] = loaded.legacy_fingerprint[:4]
    body = bytes(payload[:-4])
    payload = body + struct.pack(">I", zlib.crc32(body))
    crc = reconstruction_crc(pixels.permute(1, 2, 0).numpy())
    return Container(f"mbt2018-mean:weights={weights}", 72, 40, (payload,),
                     metadata={"recon_crc32": f"{crc:08x}"})


def test_files_of_earlier_versions_decode_and_find_moved_weights_with_the_hint(
    weights: Path, tmp_path: Path
):
    assert _HEADER.size == 15
    path = tmp_path / "old.rsic"
    path.write_bytes(pack_container(_legacy_container(weights)))
    decoded = decompress_container(read_container(path.read_bytes()))
    assert decoded.shape == IMAGE.shape
    moved = _moved(weights, tmp_path)
    with pytest.raises(WeightsError, match="not found"):
        decompress_container(read_container(path.read_bytes()))
    container = read_container(path.read_bytes())
    assert np.array_equal(decompress_container(container, weights=moved), decoded)

