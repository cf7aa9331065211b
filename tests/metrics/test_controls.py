from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from innrsic.errors import MetricError
from innrsic.metrics.controls import add_gaussian_noise, apply_control, tune_control, unsharp_mask


def _image(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(40, 216, (size, size, 3), dtype=np.uint8)


def test_noise_is_deterministic_per_seed_and_has_the_asked_sigma() -> None:
    image = np.full((128, 128, 3), 128, np.uint8)
    a, b = add_gaussian_noise(image, 10.0, seed=3), add_gaussian_noise(image, 10.0, seed=3)
    assert a.dtype == np.uint8 and a.shape == image.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, add_gaussian_noise(image, 10.0, seed=4))
    residual = a.astype(np.float64) - 128
    assert residual.std() == pytest.approx(10.0, rel=0.03)
    assert abs(residual.mean()) < 0.3
    np.testing.assert_array_equal(add_gaussian_noise(image, 0.0, seed=1), image)


def test_noise_is_clipped_to_8_bits() -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    image[:16] = 255
    out = add_gaussian_noise(image, 50.0, seed=0)
    assert out[:16].min() < 255 and out[16:].max() > 0  # not saturated the wrong way
    assert out.dtype == np.uint8


def test_unsharp_matches_pillow_and_raises_high_frequencies() -> None:
    image = np.asarray(Image.fromarray(_image()).filter(ImageFilter.GaussianBlur(1.5)))
    out = unsharp_mask(image, 1.5, radius=2.0)
    expected = np.asarray(Image.fromarray(image).filter(ImageFilter.UnsharpMask(2.0, 150, 0)))
    np.testing.assert_array_equal(out, expected)
    # more local contrast: the Laplacian energy grows
    def lap(x: np.ndarray) -> float:
        y = x.astype(np.float64).mean(axis=2)
        return float(np.abs(4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2]
                            - y[1:-1, 2:]).mean())
    assert lap(out) > 1.3 * lap(image)
    np.testing.assert_array_equal(unsharp_mask(image, 0.0), image)


def test_bad_parameters_are_metric_errors() -> None:
    image = _image()
    with pytest.raises(MetricError):
        add_gaussian_noise(image, -1.0)
    with pytest.raises(MetricError):
        unsharp_mask(image, 1.0, radius=0.0)
    with pytest.raises(MetricError):
        apply_control("blur", image, 1.0)  # type: ignore[arg-type]
    with pytest.raises(MetricError):
        add_gaussian_noise(image.astype(np.float32), 1.0)


def test_tune_control_picks_the_strength_that_minimises_the_metric() -> None:
    # ground truth = decoded + fixed-seed noise: the metric is minimal at that sigma
    decoded = [np.full((48, 48, 3), 100 + 20 * i, np.uint8) for i in range(3)]
    gts = [add_gaussian_noise(d, 8.0, seed=i) for i, d in enumerate(decoded)]

    def mad(gt: np.ndarray, test: np.ndarray) -> float:
        return float(np.abs(gt.astype(int) - test.astype(int)).mean())

    best, table = tune_control("noise", list(zip(gts, decoded, strict=True)), [0.0, 4.0, 8.0, 16.0],
                               mad, seed=0)
    assert best == 8.0
    assert [row["strength"] for row in table] == [0.0, 4.0, 8.0, 16.0]
    assert table[2]["mean"] == 0.0 and all(row["n"] == 3 for row in table)


def test_tune_control_unsharp_prefers_sharpening_a_blurred_image() -> None:
    gt = _image(1, 64)
    blurred = np.asarray(Image.fromarray(gt).filter(ImageFilter.GaussianBlur(0.8)))

    def mse(a: np.ndarray, b: np.ndarray) -> float:
        return float(((a.astype(float) - b.astype(float)) ** 2).mean())

    best, table = tune_control("unsharp", [(gt, blurred)], [0.0, 0.5, 1.0], mse, radius=1.0)
    assert best > 0.0
    assert min(row["mean"] for row in table) < table[0]["mean"]
    with pytest.raises(MetricError):
        tune_control("noise", [], [1.0], mse)


def test_tune_control_default_metric_is_lpips(weights_dir, monkeypatch) -> None:
    monkeypatch.setenv("INNRSIC_WEIGHTS_DIR", str(weights_dir))
    gt = _image(2, 64)
    best, table = tune_control("noise", [(gt, gt)], [0.0, 20.0])
    assert best == 0.0
    assert table[0]["mean"] == pytest.approx(0.0, abs=1e-6) and table[1]["mean"] > 0.0


def test_tune_controls_picks_each_minimum_and_records_the_tables() -> None:
    from innrsic.metrics.controls import tune_controls

    pairs = [(_image(seed), _image(seed + 10)) for seed in range(2)]

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return abs(float(np.abs(a.astype(float) - b).mean()) - 60.0)

    result = tune_controls(pairs, {"noise": (0.0, 3.0, 100.0), "unsharp": (0.0, 0.5)}, distance)
    for kind in ("noise", "unsharp"):
        table = result[kind]["table"]
        assert result[kind]["strength"] == min(table, key=lambda r: r["mean"])["strength"]
        assert result[kind]["val_lpips"] == min(r["mean"] for r in table)
        assert [r["n"] for r in table] == [2.0] * len(table)
    assert result["n"] == 2 and result["best_on_validation"] in ("noise", "unsharp")
    assert result["decoded_val_lpips"] == pytest.approx(
        np.mean([distance(gt, decoded) for gt, decoded in pairs]))
    edge = tune_controls(pairs, {"noise": (0.0, 100.0)}, lambda a, b: -float(b.std()))
    assert edge["noise"]["strength"] == 100.0 and edge["noise"]["at_grid_edge"]
