"""Untrusted model files: a pickle whose unpickling runs code is refused by every weights loader
(learned codecs, enhancers, LPIPS, training checkpoints and feature losses) with a
`WeightsError` and runs nothing; weights files that would make a loader allocate far more than
they hold are refused first. (Untrusted YAML configs: tests/train/test_config.py.)

The payload is live: `test_the_payload_runs_code_when_unpickled_unsafely` shows that a plain
unpickler does create the marker file the other tests look for.
"""

from __future__ import annotations

import json
import lzma
import os
import pickle
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from innrsic.codecs import learned_checkpoint, make_codec
from innrsic.codecs.learned_checkpoint import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_CHECKPOINT_BYTES,
    build_model,
    load_elic_checkpoint,
    load_learned_checkpoint,
)
from innrsic.enhancer import from_original_checkpoint, load_enhancer
from innrsic.errors import WeightsError
from innrsic.metrics.perceptual import lpips_model, squeeze_features_state_dict
from innrsic.train.checkpoint import load_checkpoint
from innrsic.train.losses import squeeze_features, vgg19_conv5_4


class Exploit:
    """Unpickling this runs ``touch MARKER`` (pickle calls os.system with the argument)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return os.system, (f"touch '{self.marker}'",)


def _torch_zip(path: Path, marker: Path) -> Path:
    """torch.save's zip format, the exploit among real tensors in a state dict."""
    torch.save({"state_dict": {"weight": torch.zeros(2), "bias": Exploit(marker)}}, path)
    return path


def _legacy_pickle(path: Path, marker: Path) -> Path:
    """A bare pickle (what torch.load also accepts), the exploit at the top level."""
    path.write_bytes(pickle.dumps(Exploit(marker), protocol=2))
    return path


def _xz(path: Path, marker: Path) -> Path:
    """The exploit checkpoint xz-compressed, like the ELIC authors' released files."""
    path.write_bytes(lzma.compress(_torch_zip(path, marker).read_bytes()))
    return path


MAKERS = {"torch-zip": _torch_zip, "legacy-pickle": _legacy_pickle, "xz": _xz}

LOADERS: dict[str, Callable[[Path], object]] = {
    "enhancer original checkpoint": from_original_checkpoint,
    "enhancer safetensors loader": load_enhancer,
    "elic checkpoint": load_elic_checkpoint,
    "learned codec checkpoint": lambda path: load_learned_checkpoint(path, "mbt2018-mean"),
    "learned codec named by a container spec": lambda path: make_codec(
        f"elic:weights={path}"
    ).decode(b""),
    "training resume checkpoint": load_checkpoint,
    "LPIPS squeeze backbone": squeeze_features_state_dict,
    "LPIPS model": lpips_model,
    "squeeze feature loss": squeeze_features,
    "VGG19 feature loss": vgg19_conv5_4,
}


@pytest.mark.parametrize("maker", sorted(MAKERS))
@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_code_executing_pickles_are_refused_without_side_effects(
    loader: str, maker: str, tmp_path: Path
):
    marker = tmp_path / "marker"
    path = MAKERS[maker](tmp_path / "weights.pth", marker)
    assert not marker.exists()
    with pytest.raises(WeightsError):
        LOADERS[loader](path)
    assert not marker.exists(), f"{loader} ran the pickle's code"


def test_the_payload_runs_code_when_unpickled_unsafely(tmp_path: Path):
    marker = tmp_path / "marker"
    torch.load(_torch_zip(tmp_path / "weights.pth", marker), weights_only=False)
    assert marker.exists()


# --- files that would make the loader allocate far more than they hold -----------------------


def _innrsic_format(path: Path, metadata_config: dict, arch: str = "mbt2018-mean") -> Path:
    torch.manual_seed(0)
    tensors = {
        k: v.contiguous() for k, v in build_model(arch, {"N": 8, "M": 12}).state_dict().items()
    }
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "config": json.dumps(metadata_config),
    }
    save_file(tensors, path, metadata=metadata)
    return path


@pytest.mark.parametrize(
    ("config", "message"),
    [({"N": 100_000, "M": 100_000}, "not its tensors"), ({"N": 8, "M": 13}, "not its tensors")],
)
def test_metadata_config_must_describe_the_tensors(config: dict, message: str, tmp_path: Path):
    # Before the check a 100k-channel config built the network first (terabytes).
    path = _innrsic_format(tmp_path / "w.safetensors", config)
    start = time.perf_counter()
    with pytest.raises(WeightsError, match=message):
        load_learned_checkpoint(path)
    assert time.perf_counter() - start < 5


def test_channel_counts_from_tensor_shapes_are_bounded(tmp_path: Path):
    """Empty tensors can claim any channel count; the config they imply is bounded."""
    state = build_model("mbt2018-mean", {"N": 8, "M": 12}).state_dict()
    state["g_a.0.weight"] = torch.zeros(100_000, 0, 5, 5)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    start = time.perf_counter()
    with pytest.raises(WeightsError, match="exceeds the limits"):
        load_learned_checkpoint(path, "mbt2018-mean")
    assert time.perf_counter() - start < 5


def test_xz_bomb_is_refused_without_inflating_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    limit = 1 << 20  # the real limit (1 GiB) works the same; a small one keeps the test quick
    monkeypatch.setattr(learned_checkpoint, "MAX_CHECKPOINT_BYTES", limit)
    path = tmp_path / "bomb.pth.tar.xz"
    path.write_bytes(lzma.compress(bytes(64 * limit)))  # 64 MiB of zeros in about 10 KB
    tracemalloc.start()
    try:
        with pytest.raises(WeightsError, match="decompresses to more than"):
            load_learned_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20  # liblzma's 8 MiB dictionary, not the 64 MiB the bomb inflates to


def test_oversized_weights_file_is_refused_before_reading(tmp_path: Path):
    path = tmp_path / "huge.pth"
    with path.open("wb") as handle:  # sparse: no disk space used
        handle.truncate(MAX_CHECKPOINT_BYTES + 1)
    start = time.perf_counter()
    with pytest.raises(WeightsError, match="weights limit"):
        load_learned_checkpoint(path)
    assert time.perf_counter() - start < 1
