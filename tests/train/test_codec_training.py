"""Learned-codec training on real UC-M images: the RD loss falls, resume is exact (both
optimizers), validation measures real bitstreams that `make_codec` reproduces, DDP, configs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from innrsic.cli import main as cli_main
from innrsic.codecs import make_codec
from innrsic.errors import ConfigError
from innrsic.metrics import bits_per_pixel, psnr
from innrsic.raster.image import write_image
from innrsic.train.checkpoint import list_checkpoints, load_checkpoint
from innrsic.train.codec import CodecRecipe, load_codec_config, train_codec
from innrsic.train.config import PUBLISHED_ELIC_LAMBDAS, CodecTrainingConfig

REPO = Path(__file__).resolve().parents[2]
TINY_ELIC = ["model.N=16", "model.M=32", "model.groups=[4, 4, 8, 8, 8]"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads on a loaded 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(data_root: Path, run_dir: Path, *extra: str) -> CodecTrainingConfig:
    overrides = [
        f"run_dir={run_dir}",
        f"data.root={data_root}",
        "data.crop_size=64",
        "data.workers=0",
        *TINY_ELIC,
        "loss.lmbda=0.01",
        "optim.lr=1e-3",
        "train.steps=16",
        "train.batch_size=4",
        "train.log_every=1",
        "train.image_every=8",
        "train.checkpoint_every=8",
        "val.every=16",
        "val.max_images=2",
        *extra,
    ]
    return load_codec_config(None, overrides)


def train_rows(run_dir: Path) -> list[dict]:
    """The training log without its timing column."""
    rows = json.loads((run_dir / "train_log.json").read_text())
    return [{k: v for k, v in row.items() if k != "steps_per_s"} for row in rows]


@pytest.mark.slow
def test_rd_loss_falls_resume_is_exact_and_validation_is_real(
    data_root: Path, tmp_path: Path
) -> None:
    straight = tmp_path / "straight"
    result = train_codec(tiny_config(data_root, straight))
    assert result.step == 16

    rows = train_rows(straight)
    totals = [row["total"] for row in rows]
    assert len(totals) == 16
    assert np.mean(totals[-4:]) < 0.6 * np.mean(totals[:4])  # lambda*255^2*MSE + bpp falls
    assert all(row["bpp"] > 0 and row["aux"] > 0 for row in rows)

    # interrupted at 8, then resumed: identical weights, losses and optimizer states
    resumed = tmp_path / "resumed"
    assert train_codec(tiny_config(data_root, resumed), stop_at=8).step == 8
    assert [step for step, _ in list_checkpoints(resumed)] == [8]
    with pytest.raises(ConfigError, match="--resume"):
        train_codec(tiny_config(data_root, resumed))
    assert train_codec(tiny_config(data_root, resumed), resume=True).step == 16
    a = load_file(straight / "final.safetensors")
    b = load_file(resumed / "final.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert train_rows(resumed) == rows
    state_a = load_checkpoint(straight / "checkpoints" / "step_00000016.pt")
    state_b = load_checkpoint(resumed / "checkpoints" / "step_00000016.pt")
    assert len(state_a["optimizers"]) == 2  # main Adam, auxiliary Adam (quantiles)
    for opt_a, opt_b in zip(state_a["optimizers"], state_b["optimizers"], strict=True):
        assert opt_a["state"].keys() == opt_b["state"].keys()
        for key in opt_a["state"]:
            assert torch.equal(opt_a["state"][key]["exp_avg_sq"], opt_b["state"][key]["exp_avg_sq"])
    assert all(torch.equal(v, state_b["model"][k]) for k, v in state_a["model"].items())
    quantiles = "latent_codec.hyper.entropy_bottleneck.quantiles"
    initial = CodecRecipe(tiny_config(data_root, tmp_path / "x")).build_model()
    assert not torch.equal(state_a["model"][quantiles], initial.state_dict()[quantiles])

    # validation: real bitstreams; the exported weights reproduce them through make_codec
    metrics = list(csv.DictReader((straight / "metrics.csv").open()))
    assert [int(r["step"]) for r in metrics] == [16]
    last = metrics[-1]
    for row in metrics:
        assert float(row["val/images"]) == 2
        assert 0 < float(row["val/bpp_actual"]) < 24 and float(row["val/bpp_estimated"]) > 0
        assert 5 < float(row["val/psnr"]) < 60
        rd = 0.01 * 255**2 * float(row["val/mse"]) + float(row["val/bpp_actual"])
        assert float(row["val/rd_loss"]) == pytest.approx(rd, rel=1e-5)
    codec = make_codec(f"elic:weights={straight / 'final.safetensors'}")
    assert codec.loaded.lmbda == 0.01
    refs = CodecRecipe(tiny_config(data_root, tmp_path / "y")).val_refs
    assert len(refs) == 2 and all(
        ref.name.startswith(("agricultural/", "tenniscourt/")) for ref in refs
    )
    bpps, psnrs = [], []
    for ref in refs:
        image = ref.load()
        payload = codec.encode(image)
        bpps.append(bits_per_pixel(len(payload), *image.shape[:2]))
        psnrs.append(psnr(image, codec.decode(payload)))
    assert np.mean(bpps) == pytest.approx(float(last["val/bpp_actual"]), rel=1e-5)
    assert np.mean(psnrs) == pytest.approx(float(last["val/psnr"]), rel=1e-5)
    # the likelihood estimate is close to the bytes (header + stream overheads aside)
    assert float(last["val/bpp_estimated"]) == pytest.approx(
        float(last["val/bpp_actual"]), rel=0.25, abs=0.05
    )
    assert (straight / "best.safetensors").is_file()
    assert list((straight / "tensorboard").glob("events.out.tfevents.*"))


def test_cli_prints_the_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(
        [
            "train",
            "codec",
            "--config",
            str(REPO / "configs/codec/elic_0.0008.yaml"),
            "--set",
            "train.steps=10",
            "--print-config",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "lmbda: 0.0008" in text and "steps: 10" in text and "arch: elic" in text


def test_shipped_configs() -> None:
    configs = sorted((REPO / "configs" / "codec").glob("*.yaml"))
    names = {path.name for path in configs}
    assert {f"elic_{lmbda!r}.yaml" for lmbda in PUBLISHED_ELIC_LAMBDAS} <= names
    assert "quick.yaml" in names
    for path in configs:
        config = load_codec_config(path)
        if path.name != "quick.yaml":
            assert config.loss.lmbda == float(path.stem.removeprefix("elic_"))
            assert config.model.constructor_args() == {
                "N": 192,
                "M": 320,
                "groups": [16, 16, 32, 64, 192],
            }
            assert config.data.crop_size == 256 and config.train.batch_size == 16
            assert config.optim.lr == 1e-4 and config.optim.aux_lr == 1e-3
    quick = load_codec_config(REPO / "configs/codec/quick.yaml")
    assert quick.loss.lmbda in PUBLISHED_ELIC_LAMBDAS
    assert sum(quick.model.resolved_groups()) == quick.model.M


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], r"loss\.lmbda is required"),
        (["loss.lmbda=0.01", "model.arch=elic2"], r"model\.arch must be one of"),
        (["loss.lmbda=0.01", "model.M=96"], r"model\.groups must be given"),
        (["loss.lmbda=0.01", "model.M=200", "model.groups=[8, 8]"], r"sum to M=200"),
        (
            ["loss.lmbda=0.01", "model.arch=mbt2018-mean", "model.groups=[8, 8]"],
            r"groups applies to elic only",
        ),
        (["loss.lmbda=0.01", "model.arch=cheng2020-anchor"], r"set M=192"),
        (["loss.lmbda=0.01", "data.crop_size=100"], r"crop_size must be a multiple of 64"),
        (["loss.lmbda=0.01", "model.lambda=0.01"], r"unknown config key 'model\.lambda'"),
        (["loss.lmbda=0.01", "optim.aux_lr=0"], r"optim\.aux_lr must be > 0"),
    ],
)
def test_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_codec_config(None, overrides)


def test_data_errors(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INNRSIC_DATA_ROOT", raising=False)
    with pytest.raises(ConfigError, match="reserved"):
        train_codec(tiny_config(data_root, tmp_path / "a", "data.val=ucmerced-holdout"))
    with pytest.raises(ConfigError, match="needs the shared data folder"):
        train_codec(tiny_config(data_root, tmp_path / "b", "data.root=''"))
    small = tmp_path / "small"
    small.mkdir()
    write_image(small / "tiny.png", np.zeros((40, 80, 3), np.uint8))
    with pytest.raises(ConfigError, match="at least 64x64"):
        train_codec(tiny_config(data_root, tmp_path / "c", f"data.train=[{small}]"))
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_torchrun_two_processes(data_root: Path, tmp_path: Path) -> None:
    """DDP with the auxiliary optimizer; the hyperprior's quantiles take no part in its
    forward pass, which DDP refuses unless they are ignored."""
    run = tmp_path / "ddp"
    config = tmp_path / "ddp.yaml"
    config.write_text(
        f"run_dir: {run}\n"
        "model: {arch: bmshj2018-hyperprior, N: 8, M: 8}\n"
        f"data: {{root: '{data_root}', crop_size: 64, workers: 0}}\n"
        "loss: {lmbda: 0.01}\n"
        "train: {steps: 3, batch_size: 4, log_every: 1, checkpoint_every: 3}\n"
        "val: {every: 3, max_images: 1}\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("INNRSIC_DATA_ROOT", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "innrsic",
            "train",
            "codec",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trained to step 3" in proc.stdout
    checkpoint = load_checkpoint(run / "checkpoints" / "step_00000003.pt")
    assert checkpoint["world_size"] == 2 and len(checkpoint["optimizers"]) == 2
    codec = make_codec(f"bmshj2018-hyperprior:weights={run / 'final.safetensors'}")
    state = codec.loaded.model.state_dict()
    assert all(
        torch.equal(state[k], v)
        for k, v in checkpoint["model"].items()
        if not k.endswith(("_quantized_cdf", "_offset", "_cdf_length", "scale_table"))
    )
    row = json.loads((run / "metrics.json").read_text())[0]
    assert row["val/bpp_actual"] > 0
