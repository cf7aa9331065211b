"""`innrsic convert-checkpoint` for learned codecs: the authors' ELIC checkpoint and CompressAI
state dicts become innrsic weights files with the CDF tables stored; enhancers with the codec
and default temperature they are recorded with; outputs that are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from innrsic.cli import main
from innrsic.codecs.learned_checkpoint import build_model, load_learned_checkpoint
from innrsic.enhancer import load_enhancer


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
    assert done.returncode == 2 and "--half: for enhancers" in done.stderr
    done = run_cli("convert-checkpoint", source, "-o", target, "--arch", "mbt2018-mean")
    assert done.returncode == 0, done.stderr
    assert load_learned_checkpoint(target).arch == "mbt2018-mean"


def test_enhancer_records_its_codec_and_temperature(
    reference_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 32, item 10: --codec (as its streams name it) and --default-temperature are
    stored with the converted weights and read back with them."""
    source = reference_dir / "inn_rsic_original_G.pth"
    target = tmp_path / "enhancer.safetensors"
    assert main(["convert-checkpoint", str(source), "-o", str(target), "--codec",
                 "JP2:bpp=0.20", "--default-temperature", "0.5"]) == 0
    assert "codec jpeg2000:bpp=0.2, default temperature 0.5" in capsys.readouterr().out
    net = load_enhancer(target)
    assert (net.codec, net.default_temperature) == ("jpeg2000:bpp=0.2", 0.5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-o", "x.pth"], "-o {tmp}/x.pth: convert-checkpoint writes .safetensors files, so the "
         "output name must end in .safetensors"),
        (["-o", "exists.safetensors"], "{tmp}/exists.safetensors exists (use --force to replace "
         "it)"),
        (["-o", "x.safetensors", "--codec", "bmp"], "argument --codec: unknown codec 'bmp'"),
        (["-o", "x.safetensors", "--default-temperature", "-1"],
         "temperature must be a finite number >= 0"),
    ],
)
def test_refused_outputs_and_values_exit_2(
    reference_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv, message
) -> None:
    """Issue 32, item 14: a .pth name or an existing output is one line and exit 2."""
    (tmp_path / "exists.safetensors").write_bytes(b"old")
    argv = [str(tmp_path / a) if a.endswith((".pth", ".safetensors")) else a for a in argv]
    source = str(reference_dir / "inn_rsic_original_G.pth")
    with pytest.raises(SystemExit) as stop:
        raise SystemExit(main(["convert-checkpoint", source, *argv]))
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message.format(tmp=tmp_path) in error, error
    assert [p.name for p in tmp_path.iterdir()] == ["exists.safetensors"]
    assert (tmp_path / "exists.safetensors").read_bytes() == b"old"
