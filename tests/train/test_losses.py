"""The INN-RSIC loss: QM and noise on the reverse input, sum reductions, weights, backbones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from innrsic.enhancer import quantize_8bit, save_enhancer
from innrsic.errors import WeightsError
from innrsic.train.config import EnhancerLossConfig
from innrsic.train.losses import (
    EnhancerLoss,
    FeatureExtractor,
    build_feature_extractor,
    reverse_input,
    sample_reverse_noise,
)


def test_reverse_input_is_qm_with_straight_through_gradient() -> None:
    y = torch.tensor([[-0.2, 0.1234, 0.5, 0.99999, 1.3]], requires_grad=True)
    out = reverse_input(y, None, quantize=True)
    expected = torch.tensor([[0.0, round(0.1234 * 255) / 255, 128 / 255, 1.0, 1.0]])
    assert torch.allclose(out, expected, atol=0, rtol=0)
    assert torch.equal(out * 255, (out * 255).round())
    out.sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y))  # identity gradient, clamp included
    noise = torch.full_like(y, 0.003)
    assert torch.allclose(reverse_input(y, noise, quantize=True), expected + 0.003)
    assert torch.equal(reverse_input(y, None, quantize=False), y)


def test_reverse_noise_probability_and_scale() -> None:
    config = EnhancerLossConfig()
    generator = torch.Generator().manual_seed(0)
    draws = [sample_reverse_noise(config, (2, 3, 16, 16), 3, generator) for _ in range(400)]
    with_noise = [d.y_noise for d in draws if d.y_noise is not None]
    assert 160 < len(with_noise) < 240  # p = 0.5
    stacked = torch.stack(with_noise)
    assert stacked.std().item() == pytest.approx(0.01, rel=0.02)
    assert stacked.mean().abs().item() < 1e-4
    z = torch.stack([d.z for d in draws])
    assert draws[0].z.shape == (2, 3, 16, 16)
    assert z.std().item() == pytest.approx(1.0, rel=0.01)
    never = EnhancerLossConfig(y_noise_prob=0.0)
    assert all(sample_reverse_noise(never, (1, 3, 4, 4), 6, generator).y_noise is None
               for _ in range(20))
    assert sample_reverse_noise(never, (1, 3, 4, 4), 6, generator).z.shape == (1, 6, 4, 4)
    again = sample_reverse_noise(config, (2, 3, 16, 16), 3, torch.Generator().manual_seed(0))
    assert torch.equal(again.z, draws[0].z)


class Doubler(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x


def test_loss_terms_are_sums_with_effective_weights() -> None:
    torch.manual_seed(0)
    gt, decoded, y, reverse = (torch.rand(2, 3, 8, 8) for _ in range(4))
    z = torch.randn(2, 3, 8, 8)
    features = FeatureExtractor("doubler", Doubler())
    loss = EnhancerLoss(EnhancerLossConfig(feature_backbone="squeeze"), features)
    terms = loss(gt, decoded, y, z, reverse)
    assert terms["forward"].item() == pytest.approx(((y - decoded) ** 2).sum().item(), rel=1e-6)
    assert terms["latent"].item() == pytest.approx(200 * (z**2).sum().item() / 2, rel=1e-6)
    assert terms["reverse"].item() == pytest.approx(0.05 * ((reverse - gt) ** 2).sum().item(),
                                                    rel=1e-6)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    feature = ((2 * (reverse - gt) / std) ** 2).sum().item()
    assert terms["feature"].item() == pytest.approx(1e-4 * feature, rel=1e-5)  # not 1e-8
    total = sum(terms[k] for k in ("forward", "latent", "reverse", "feature"))
    assert terms["total"].item() == pytest.approx(total.item(), rel=1e-6)
    # DDP: each of W ranks holds 1/W of the batch; sums are scaled back to the global batch
    scaled = EnhancerLoss(EnhancerLossConfig(feature_backbone="none"), None, sum_scale=2.0)
    half = scaled(gt[:1], decoded[:1], y[:1], z[:1], reverse[:1])
    assert half["forward"].item() == pytest.approx(2 * ((y[:1] - decoded[:1]) ** 2).sum().item(),
                                                   rel=1e-6)
    assert half["latent"].item() == pytest.approx(200 * (z[:1] ** 2).sum().item(), rel=1e-6)
    assert "feature" not in half


def test_feature_backbones_missing_weights_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INNRSIC_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(WeightsError, match=r"vgg19.*vgg19-dcbb9e9d\.pth.*torch-home"):
        build_feature_extractor("vgg19")
    assert build_feature_extractor("squeeze") is not None  # the backbone shipped with innrsic
    with pytest.raises(WeightsError, match=r"nowhere\.pth: no such file or folder"):
        build_feature_extractor("squeeze", tmp_path / "nowhere.pth")
    assert build_feature_extractor("none") is None


def test_squeeze_feature_backbone_loads_and_is_frozen(weights_dir: Path) -> None:
    extractor = build_feature_extractor("squeeze", weights_dir)
    extractor.train()
    assert not extractor.layers.training
    assert all(not p.requires_grad for p in extractor.parameters())
    image = torch.rand(1, 3, 64, 64, requires_grad=True)
    features = extractor(image)
    assert features.shape == (1, 512, 3, 3)
    features.sum().backward()  # gradients reach the image, not the backbone
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_reverse_temperature_scales_the_latent() -> None:
    shape = (2, 3, 8, 8)
    draws = {}
    for temperature in (0.0, 0.5, 1.0):
        config = EnhancerLossConfig(reverse_temperature=temperature, y_noise_std=0.0)
        noise = sample_reverse_noise(config, shape, 3, torch.Generator().manual_seed(1))
        draws[temperature] = noise.z
    assert torch.count_nonzero(draws[0.0]) == 0
    assert torch.equal(draws[0.5] * 2, draws[1.0])


def test_reverse_pass_can_start_from_the_decoded_image() -> None:
    from innrsic.enhancer import EnhancerConfig, INNEnhancer
    from innrsic.train.enhancer import EnhancerTrainingPass

    net = INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4))
    gt, decoded = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    z = torch.zeros(1, 3, 8, 8)
    _, _, y_in, reverse, restored = EnhancerTrainingPass(net, True, "decoded")(
        gt, decoded, None, z
    )
    assert torch.equal(y_in, decoded)
    assert torch.allclose(reverse, net.inverse(decoded, z))
    assert restored is None
    y, _, y_in, _, _ = EnhancerTrainingPass(net, True, "y")(gt, decoded, None, z)
    assert torch.equal(y_in, quantize_8bit(y))


def test_restore_pass_is_the_inverse_at_zero_latent_with_its_own_pixel_term() -> None:
    from innrsic.enhancer import EnhancerConfig, INNEnhancer
    from innrsic.train.enhancer import EnhancerTrainingPass

    net = INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4))
    gt, decoded = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    z = torch.randn(2, 3, 8, 8)
    y, latent, _, reverse, restored = EnhancerTrainingPass(net, True, "decoded", restore=True)(
        gt, decoded, None, z
    )
    assert restored is not None
    assert torch.allclose(restored, net.inverse(decoded, torch.zeros_like(z)))
    assert not torch.allclose(restored, reverse)
    config = EnhancerLossConfig(feature_backbone="none", restore_weight=3.0)
    terms = EnhancerLoss(config, None)(gt, decoded, y, latent, reverse, restored)
    assert torch.isclose(terms["restore"], 3.0 * (restored - gt).pow(2).sum())
    assert torch.isclose(terms["total"], sum(v for k, v in terms.items() if k != "total"))
    assert "restore" not in EnhancerLoss(config, None)(gt, decoded, y, latent, reverse)


def test_init_weights_start_from_a_saved_enhancer(tmp_path: Path) -> None:
    from innrsic.enhancer import EnhancerConfig, INNEnhancer
    from innrsic.errors import ConfigError
    from innrsic.train.config import EnhancerTrainingConfig, load_config
    from innrsic.train.enhancer import EnhancerRecipe

    source = INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4))
    for parameter in source.parameters():
        torch.nn.init.normal_(parameter)
    weights = tmp_path / "start.safetensors"
    save_enhancer(source, weights)
    base = ["data.codec=jpeg2000:bpp=0.1", "data.train=[unused]", "loss.feature_backbone=none",
            "model.blocks=1", "model.growth=4", "model.gaussian_growth=4",
            f"model.init_weights={weights}"]
    net = EnhancerRecipe(load_config(EnhancerTrainingConfig, None, base)).build_model()
    for name, tensor in source.state_dict().items():
        assert torch.equal(net.state_dict()[name], tensor), name
    other = load_config(EnhancerTrainingConfig, None, [*base, "model.growth=8"])
    with pytest.raises(ConfigError, match="init_weights"):
        EnhancerRecipe(other).build_model()


def test_moments_latent_loss_is_zero_at_unit_gaussian_and_grows_when_z_shrinks() -> None:
    from innrsic.train.losses import latent_moments_kl

    generator = torch.Generator().manual_seed(0)
    z = torch.randn((4, 3, 64, 64), generator=generator)
    unit = latent_moments_kl(z)
    assert unit < 0.01 * 64 * 64
    shrunk = latent_moments_kl(0.1 * z)
    expected = 3 * 0.5 * (0.01 - 1 - torch.log(torch.tensor(0.01))) * 64 * 64
    assert torch.isclose(shrunk, expected, rtol=0.02)
    config = EnhancerLossConfig(feature_backbone="none", latent_loss="moments", latent_weight=2.0)
    gt = torch.rand((4, 3, 64, 64), generator=generator)
    terms = EnhancerLoss(config, None)(gt, gt, gt, 0.1 * z, gt)
    assert torch.isclose(terms["latent"], 2.0 * shrunk)


def test_identity_init_starts_training_from_the_decoded_image() -> None:
    from innrsic.errors import ConfigError
    from innrsic.train.config import EnhancerTrainingConfig, load_config
    from innrsic.train.enhancer import EnhancerRecipe

    base = ["data.codec=jpeg2000:bpp=0.1", "data.train=[unused]", "loss.feature_backbone=none",
            "model.blocks=2", "model.growth=4", "model.gaussian_growth=4"]
    net = EnhancerRecipe(
        load_config(EnhancerTrainingConfig, None, [*base, "model.init=identity"])
    ).build_model()
    decoded = torch.rand((1, 3, 16, 16), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(net.enhance(decoded, temperature=0.0), decoded, atol=1e-6)
    paper = EnhancerRecipe(load_config(EnhancerTrainingConfig, None, base)).build_model()
    assert not torch.allclose(paper.enhance(decoded, temperature=0.0), decoded, atol=1e-2)
    with pytest.raises(ConfigError, match="exclude"):
        load_config(EnhancerTrainingConfig, None,
                    [*base, "model.init=identity", "model.init_weights=x.safetensors"])
    with pytest.raises(ConfigError, match="init"):
        load_config(EnhancerTrainingConfig, None, [*base, "model.init=zeros"])


def test_zero_forward_weights_skip_the_forward_pass() -> None:
    from innrsic.errors import ConfigError
    from innrsic.train.config import EnhancerTrainingConfig, load_config
    from innrsic.train.enhancer import EnhancerRecipe

    base = ["data.codec=jpeg2000:bpp=0.1", "data.train=[unused]", "loss.feature_backbone=none",
            "model.blocks=1", "model.growth=4", "model.gaussian_growth=4",
            "loss.forward_weight=0", "loss.latent_weight=0", "loss.restore_weight=1"]
    with pytest.raises(ConfigError, match="reverse_source decoded"):
        load_config(EnhancerTrainingConfig, None, base)
    recipe = EnhancerRecipe(
        load_config(EnhancerTrainingConfig, None, [*base, "loss.reverse_source=decoded"])
    )
    recipe.setup(torch.device("cpu"), 0, 1)
    module = recipe.training_module(recipe.build_model())
    generator = torch.Generator().manual_seed(0)
    batch = {"gt": torch.rand((2, 3, 16, 16), generator=generator),
             "decoded": torch.rand((2, 3, 16, 16), generator=generator)}
    output = recipe.training_step(module, batch, 0, generator, want_images=False)
    assert set(output.terms) >= {"reverse", "restore", "total"}
    assert "forward" not in output.terms and "latent" not in output.terms
