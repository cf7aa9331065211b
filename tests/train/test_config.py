"""Config loading: paper defaults, strict keys and types, overrides, the shipped YAML files, and
untrusted YAML that would construct objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from innrsic.errors import ConfigError
from innrsic.train.config import (
    EnhancerTrainingConfig,
    load_config,
    parse_override,
    read_yaml_mapping,
)

REPO = Path(__file__).resolve().parents[2]
MINIMAL = "data:\n  codec: jpeg2000:bpp=0.1\n  train: [pairs/train]\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_published_configuration(tmp_path: Path) -> None:
    config = load_config(EnhancerTrainingConfig, write(tmp_path, MINIMAL))
    assert (config.model.blocks, config.model.growth, config.model.gaussian_growth) == (8, 32, 64)
    assert (config.model.expansion, config.model.clamp) == (1, 1.0)
    assert config.data.crop_size == 128
    loss = config.loss
    assert (loss.forward_weight, loss.latent_weight, loss.reverse_weight) == (1.0, 200.0, 0.05)
    assert loss.feature_weight == 1e-4  # effective weight, applied once
    assert (loss.y_noise_std, loss.y_noise_prob, loss.quantize_y) == (0.01, 0.5, True)
    assert loss.feature_backbone == "vgg19"
    optim = config.optim
    assert (optim.lr, optim.betas, optim.weight_decay) == (1e-4, [0.9, 0.999], 1e-5)
    assert optim.milestones == [100_000, 200_000, 300_000, 400_000]
    assert (optim.gamma, optim.grad_clip) == (0.5, 10.0)
    assert (config.train.steps, config.train.batch_size, config.train.seed) == (500_000, 16, 10)
    assert (config.val.temperature, config.val.metric) == (1.0, "lpips")


def test_unknown_key_names_the_key_and_the_valid_ones(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "optim:\n  learning_rate: 0.001\n")
    with pytest.raises(ConfigError, match=r"optim\.learning_rate.*lr, betas, weight_decay"):
        load_config(EnhancerTrainingConfig, path)
    with pytest.raises(ConfigError, match=r"unknown config key 'trian'.*run_dir, model"):
        load_config(EnhancerTrainingConfig, write(tmp_path, MINIMAL + "trian: {}\n"))


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("train:\n  steps: many\n", r"train\.steps must be an integer"),
        ("train:\n  steps: 10.5\n", r"train\.steps must be an integer"),
        ("train:\n  batch_size: true\n", r"train\.batch_size must be an integer"),
        ("optim:\n  lr: fast\n", r"optim\.lr must be a number"),
        ("optim:\n  milestones: 100\n", r"optim\.milestones must be a list of int"),
        ("loss:\n  quantize_y: 1\n", r"loss\.quantize_y must be true or false"),
        ("model: 3\n", r"model must be a mapping"),
        ("loss:\n  feature_backbone: vgg16\n", r"one of 'vgg19', 'squeeze', 'none'"),
        ("optim:\n  milestones: [300, 200]\n", r"strictly increasing"),
        ("train:\n  steps: 0\n", r"train\.steps must be > 0"),
    ],
)
def test_wrong_types_and_values_are_errors(tmp_path: Path, snippet: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(EnhancerTrainingConfig, write(tmp_path, MINIMAL + snippet))


def test_required_fields_without_a_published_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.codec is required"):
        load_config(EnhancerTrainingConfig, write(tmp_path, "train:\n  steps: 5\n"))


def test_yaml_1e_minus_4_is_a_float_and_ints_widen(tmp_path: Path) -> None:
    config = load_config(
        EnhancerTrainingConfig, write(tmp_path, MINIMAL + "optim:\n  lr: 1e-4\n  gamma: 1\n")
    )
    assert config.optim.lr == pytest.approx(1e-4) and isinstance(config.optim.lr, float)
    assert config.optim.gamma == 1.0 and isinstance(config.optim.gamma, float)


def test_overrides_apply_after_the_file_with_yaml_scalar_rules(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "train:\n  steps: 100\n")
    config = load_config(
        EnhancerTrainingConfig,
        path,
        ["train.steps=7", "optim.lr=2e-4", "data.train=[a, b]", "loss.feature_backbone=none",
         "loss.quantize_y=false", "run_dir=/tmp/x y"],
    )
    assert config.train.steps == 7
    assert config.optim.lr == pytest.approx(2e-4)
    assert config.data.train == ["a", "b"]
    assert config.loss.feature_backbone == "none"
    assert config.loss.quantize_y is False
    assert config.run_dir == "/tmp/x y"
    assert config.train.batch_size == 16  # untouched default


def test_bad_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=r"train\.stepz.*valid keys in 'train'"):
        load_config(EnhancerTrainingConfig, path, ["train.stepz=3"])
    with pytest.raises(ConfigError, match="not of the form"):
        load_config(EnhancerTrainingConfig, path, ["train.steps"])
    with pytest.raises(ConfigError, match="must be an integer"):
        load_config(EnhancerTrainingConfig, path, ["train.steps=abc"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config(EnhancerTrainingConfig, path, ["data.codec.x=3"])
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(EnhancerTrainingConfig, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(EnhancerTrainingConfig, write(tmp_path, "data: [unclosed\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(EnhancerTrainingConfig, write(tmp_path, "- 1\n- 2\n"))
    # safe_load only: a Python object tag is refused, not constructed
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(EnhancerTrainingConfig, write(tmp_path, "run_dir: !!python/name:os.system\n"))


def test_shipped_configs_load() -> None:
    files = sorted((REPO / "configs" / "enhancer").glob("*.yaml"))
    names = {f.stem for f in files}
    assert {"quick", "jpeg2000_bpp0.1", "jpeg2000_bpp0.2", "jpeg2000_bpp0.4",
            "elic_lambda0.0008"} <= names
    for path in files:
        config = load_config(EnhancerTrainingConfig, path)
        assert config.data.codec and config.data.train and config.data.val
    quick = load_config(EnhancerTrainingConfig, REPO / "configs/enhancer/quick.yaml")
    assert quick.model.blocks == 2 and quick.data.crop_size == 64
    assert quick.loss.feature_backbone == "squeeze"
    paper = load_config(EnhancerTrainingConfig, REPO / "configs/enhancer/elic_lambda0.0008.yaml")
    assert paper.data.codec == "elic:lambda=0.0008"
    assert paper.model.blocks == 8 and paper.train.steps == 500_000


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/object/new:os.system",
        "!!python/name:os.system",
        "!!python/module:os",
    ],
)
def test_yaml_object_construction_is_refused(tag: str, tmp_path: Path):
    marker = tmp_path / "marker"
    config = tmp_path / "config.yaml"
    config.write_text(f"enhancer:\n  blocks: {tag} [\"touch '{marker}'\"]\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        read_yaml_mapping(config)
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_override(f"enhancer.blocks={tag} [\"touch '{marker}'\"]")
    assert not marker.exists()
