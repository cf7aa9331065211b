"""Reproducible enhancement: the seeded enhancer writes the same bytes with 1 and 2 threads, in
this process and from the CLI in another, for `enhance` and `decompress --enhance`.

(Reproducible decoding, the reconstruction checksum: tests/rsic/test_reproducible.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from innrsic.codecs import make_codec
from innrsic.enhancer import EnhancerConfig, load_enhancer
from innrsic.enhancer.apply import decompress_enhanced, enhance_file
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.rsic.coding import compress_file


@pytest.fixture(scope="module")
def enhancer_weights(randomised_enhancer) -> Path:
    """Two blocks of the paper's widths, every weight randomised so the output depends on z."""
    return randomised_enhancer(EnhancerConfig(blocks=2))


@pytest.mark.slow
def test_seeded_enhancement_writes_identical_bytes_across_runs_and_threads(
    run_cli, crops: list[Path], enhancer_weights: Path, tmp_path: Path, restore_threads
) -> None:
    # Measured: the enhancer's convolutions give bit-identical floats with 1 and 2 threads
    # (paper-size network, 576x576 tiles), so the outputs are byte-identical, not just close.
    source, stream = crops[2], tmp_path / "scene.rsic"
    compress_file(source, stream, make_codec("jpeg:quality=40"))
    settings = {"temperature": 0.8, "seed": 3, "tile": 64, "overlap": 8}
    net = load_enhancer(enhancer_weights).eval()
    torch.set_num_threads(1)  # in this process
    enhance_file(source, tmp_path / "enhanced.png", net, EnhanceSettings(**settings))
    decompress_enhanced(stream, tmp_path / "decoded.png", net, EnhanceSettings(**settings))
    torch.set_num_threads(2)
    enhance_file(source, tmp_path / "enhanced2.png", net, EnhanceSettings(**settings))
    options = [f"--{key}={value}" for key, value in settings.items()]
    for command, weights, name in (  # the CLI in another process, with two threads
        [["enhance", source], "--weights", "enhanced"],
        [["decompress", stream], "--enhance", "decoded"],
    ):
        target = tmp_path / f"{name}_cli.png"
        result = run_cli(
            *command, "-o", target, weights, enhancer_weights, *options, "--threads", "2",
            threads=2,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    enhanced = (tmp_path / "enhanced.png").read_bytes()
    assert (tmp_path / "enhanced2.png").read_bytes() == enhanced
    assert (tmp_path / "enhanced_cli.png").read_bytes() == enhanced
    assert (tmp_path / "decoded_cli.png").read_bytes() == (tmp_path / "decoded.png").read_bytes()
    assert (tmp_path / "decoded.png").read_bytes() != enhanced
