"""End-to-end training on real UC-M pairs: loss falls, exact resume, validation, DDP."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from innrsic.enhancer import load_enhancer
from innrsic.errors import ConfigError
from innrsic.train import train_enhancer
from innrsic.train.checkpoint import list_checkpoints, load_checkpoint
from innrsic.train.config import EnhancerTrainingConfig, load_config
from innrsic.train.enhancer import EnhancerRecipe

CODEC = "jpeg2000:bpp=0.1"


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a loaded 2-core machine spinning
    OpenMP threads make them many times slower. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(pairs: dict[str, Path], run_dir: Path, *extra: str) -> EnhancerTrainingConfig:
    overrides = [
        f"run_dir={run_dir}",
        f"data.codec={CODEC}",
        f"data.train=[{pairs['train']}]",
        "data.crop_size=32",
        "data.workers=0",
        "model.blocks=2",
        "model.growth=8",
        "model.gaussian_growth=8",
        "loss.feature_backbone=none",
        "train.steps=30",
        "train.batch_size=4",
        "train.log_every=1",
        "train.image_every=10",
        "train.checkpoint_every=15",
        "optim.lr=1e-3",
        *extra,
    ]
    return load_config(EnhancerTrainingConfig, None, overrides)


def losses(run_dir: Path) -> list[float]:
    import json

    return [row["total"] for row in json.loads((run_dir / "train_log.json").read_text())]


@pytest.mark.slow
def test_loss_falls_and_resume_is_exact(tiny_pairs: dict[str, Path], tmp_path: Path,
                                        weights_env: Path) -> None:
    validation = [f"data.val={tiny_pairs['val']}", "val.every=15"]
    straight = tiny_config(tiny_pairs, tmp_path / "straight", *validation)
    result = train_enhancer(straight)
    assert result.step == 30

    totals = losses(tmp_path / "straight")
    assert len(totals) == 30
    assert sum(totals[-5:]) / 5 < 0.7 * sum(totals[:5]) / 5

    # interrupted at 15, then resumed: bit-identical weights and identical later losses
    resumed = tiny_config(tiny_pairs, tmp_path / "resumed", *validation)
    assert train_enhancer(resumed, stop_at=15).step == 15
    assert [step for step, _ in list_checkpoints(tmp_path / "resumed")] == [15]
    with pytest.raises(ConfigError, match="--resume"):
        train_enhancer(resumed)
    assert train_enhancer(resumed, resume=True).step == 30
    a = load_file(tmp_path / "straight" / "final.safetensors")
    b = load_file(tmp_path / "resumed" / "final.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert losses(tmp_path / "resumed") == totals
    state_a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "step_00000030.pt")
    state_b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "step_00000030.pt")
    for key in state_a["optimizers"][0]["state"]:
        assert torch.equal(state_a["optimizers"][0]["state"][key]["exp_avg_sq"],
                           state_b["optimizers"][0]["state"][key]["exp_avg_sq"])
    assert state_a["schedulers"][0]["last_epoch"] == 30

    # validation: metrics table, best model, TensorBoard events
    import csv

    rows = list(csv.DictReader((tmp_path / "straight" / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [15, 30]
    for row in rows:
        assert 15 < float(row["decoded/psnr"]) < 40
        assert 0 < float(row["decoded/ms_ssim"]) <= 1
        assert 0 < float(row["enhanced/lpips"]) < 1 and 0 < float(row["decoded/lpips"]) < 1
    best = load_enhancer(tmp_path / "straight" / "best.safetensors")
    assert best.config.blocks == 2 and best.config.growth == 8
    assert list((tmp_path / "straight" / "tensorboard").glob("events.out.tfevents.*"))
    assert (tmp_path / "straight" / "config.yaml").read_text().startswith("run_dir:")


def test_resume_refuses_a_changed_experiment(tiny_pairs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_enhancer(tiny_config(tiny_pairs, run, "train.steps=2", "train.checkpoint_every=2"))
    changed = tiny_config(tiny_pairs, run, "train.steps=4", "optim.lr=5e-4")
    with pytest.raises(ConfigError, match=r"optim\.lr changed"):
        train_enhancer(changed, resume=True)
    longer = tiny_config(tiny_pairs, run, "train.steps=4", "train.checkpoint_every=2")
    assert train_enhancer(longer, resume=True).step == 4
    assert [s for s, _ in list_checkpoints(run)] == [2, 4]


def test_resume_may_move_milestones_still_ahead(tiny_pairs: dict[str, Path],
                                                tmp_path: Path) -> None:
    """A time budget: a resumed run may stop earlier with its learning-rate drops moved along,
    as long as no milestone, old or new, has been passed."""
    run = tmp_path / "run"
    first = ["train.checkpoint_every=2", "optim.lr=1e-3"]
    train_enhancer(tiny_config(tiny_pairs, run, "train.steps=2", "optim.milestones=[8,9]",
                               *first))
    passed = tiny_config(tiny_pairs, run, "train.steps=4", "optim.milestones=[1,3]", *first)
    with pytest.raises(ConfigError, match=r"optim\.milestones changed"):
        train_enhancer(passed, resume=True)
    moved = tiny_config(tiny_pairs, run, "train.steps=4", "optim.milestones=[3,6]", *first,
                        "train.log_every=1")
    assert train_enhancer(moved, resume=True).step == 4
    with (run / "train_log.csv").open(newline="") as handle:
        rates = {int(row["step"]): float(row["lr"]) for row in csv.DictReader(handle)}
    assert rates[4] == pytest.approx(5e-4)  # halved at step 3; the old plan kept 1e-3 to 8


def test_codec_mismatch_and_missing_pairs(tiny_pairs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds pairs of codec"):
        train_enhancer(tiny_config(tiny_pairs, tmp_path / "a", "data.codec=jpeg2000:bpp=0.2"))
    with pytest.raises(ConfigError, match="innrsic pairs"):
        train_enhancer(tiny_config(tiny_pairs, tmp_path / "b", f"data.train=[{tmp_path}]"))


def test_mixed_codecs_widen_the_training_set_only(
    tiny_pairs: dict[str, Path], tmp_path: Path, weights_env: Path
) -> None:
    """Pairs of a `mixed_codecs` spec are accepted for training, never for validation."""
    mixed = ["data.codec=jpeg2000:bpp=0.2", f"data.mixed_codecs=[{CODEC}]"]
    recipe = EnhancerRecipe(tiny_config(tiny_pairs, tmp_path / "a", *mixed))
    assert len(recipe.train_dataset()) == 6
    with pytest.raises(ConfigError, match=r"asks for 'jpeg2000:bpp=0\.2'$"):
        train_enhancer(tiny_config(
            tiny_pairs, tmp_path / "b", *mixed, f"data.val={tiny_pairs['val']}", "val.every=15"
        ))


@pytest.mark.slow
def test_torchrun_two_processes(tiny_pairs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    config = tmp_path / "ddp.yaml"
    config.write_text(
        f"run_dir: {run}\n"
        f"model: {{blocks: 2, growth: 8, gaussian_growth: 8}}\n"
        f"data: {{codec: '{CODEC}', train: ['{tiny_pairs['train']}'], crop_size: 32, "
        "workers: 0}\n"
        "loss: {feature_backbone: none}\n"
        "train: {steps: 4, batch_size: 4, log_every: 2, checkpoint_every: 4}\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "innrsic", "train", "enhancer", "--config", str(config)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trained to step 4" in proc.stdout
    checkpoint = load_checkpoint(run / "checkpoints" / "step_00000004.pt")
    assert checkpoint["step"] == 4 and checkpoint["world_size"] == 2
    net = load_enhancer(run / "final.safetensors")
    assert all(torch.equal(net.state_dict()[k], v) for k, v in checkpoint["model"].items())


def test_cpu_training_runs_on_the_configured_threads(
    tiny_pairs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One thread per process by default on a CPU (torch's one per core was 33x slower)."""
    seen: list[int] = []
    step = EnhancerRecipe.training_step

    def recording(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(EnhancerRecipe, "training_step", recording)
    before = torch.get_num_threads()
    train_enhancer(tiny_config(tiny_pairs, tmp_path / "one", "train.steps=2", "train.device=cpu"))
    train_enhancer(tiny_config(tiny_pairs, tmp_path / "two", "train.steps=2", "train.device=cpu",
                               "train.threads=2"))
    assert seen == [1, 1, 2, 2]
    assert torch.get_num_threads() == before
