"""`innrsic convert-checkpoint` for learned codecs: the authors' ELIC checkpoint and CompressAI
state dicts become innrsic weights files with the CDF tables stored."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from innrsic.codecs.learned_checkpoint import build_model, load_learned_checkpoint


@pytest.mark.slow
def test_authors_elic_checkpoint_converts_with_frozen_tables(
    run_cli, reference_dir: Path, tmp_path: Path
):
    source = reference_dir / "elic_original_checkpoint.pth.tar.xz"
    target = tmp_path / "elic-lambda0.0008.safetensors"
    done = run_cli("convert-checkpoint", source, "-o", target, "--lambda", "0.0008")
    assert done.returncode == 0, done.stderr
    converted = load_learned_checkpoint(target)
    assert (converted.arch, converted.lmbda) == ("elic", 0.0008)
    assert converted.frozen_tables is not None
    with safe_open(str(target), framework="pt") as handle:
        assert handle.metadata()["format_version"] == "2"
        assert "latent_codec.hyper.entropy_bottleneck._quantized_cdf" in handle.keys()  # noqa: SIM118
    original = load_learned_checkpoint(source)
    assert converted.fingerprint == original.fingerprint  # tables are not part of the identity
    assert converted.fingerprint.hex()[:32] in done.stdout
    for key, table in converted.frozen_tables.items():
        assert torch.equal(original.exact.state_dict()[key], table), key


def test_compressai_state_dict_needs_arch_and_half_is_refused(run_cli, tmp_path: Path):
    source = tmp_path / "native.pth.tar"
    torch.save({"state_dict": build_model("mbt2018-mean", {"N": 8, "M": 12}).state_dict()}, source)
    target = tmp_path / "mbt.safetensors"
    done = run_cli("convert-checkpoint", source, "-o", target, "--arch", "mbt2018-mean", "--half")
    assert done.returncode == 2 and "--half is for enhancers" in done.stderr
    done = run_cli("convert-checkpoint", source, "-o", target, "--arch", "mbt2018-mean")
    assert done.returncode == 0, done.stderr
    assert load_learned_checkpoint(target).arch == "mbt2018-mean"
