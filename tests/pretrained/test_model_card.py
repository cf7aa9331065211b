"""Model-card statistics: paired differences, the temperature rule, the significance check."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from innrsic.pretrained.card import (
    choose_temperature,
    evaluation_stats,
    lpips_gain_is_significant,
    stats_table,
)

CODEC = "jpeg2000:bpp=0.1"
COLUMNS = ("image", "codec", "enhancer", "enhancer_name", "temperature", "status",
           "payload_bpp", "psnr", "ms_ssim", "lpips_squeeze")


def _write_rows(path: Path, shifts: dict[float, tuple[float, float]], n: int = 30) -> Path:
    """Decoded rows plus, per temperature, rows shifted by (dPSNR, dLPIPS) with noise."""
    rng = np.random.default_rng(0)
    base_psnr = rng.normal(25, 3, n)
    base_lpips = rng.uniform(0.3, 0.6, n)
    rows = []
    for i in range(n):
        rows.append({"image": f"im{i}", "codec": CODEC, "enhancer": "", "enhancer_name": "",
                     "temperature": "", "status": "ok", "payload_bpp": 0.1,
                     "psnr": base_psnr[i], "ms_ssim": 0.8, "lpips_squeeze": base_lpips[i]})
        for t, (d_psnr, d_lpips) in shifts.items():
            rows.append({"image": f"im{i}", "codec": CODEC, "enhancer": "w.safetensors",
                         "enhancer_name": "w", "temperature": t, "status": "ok",
                         "payload_bpp": 0.1, "psnr": base_psnr[i] + d_psnr + rng.normal(0, 0.1),
                         "ms_ssim": 0.8, "lpips_squeeze": base_lpips[i] + d_lpips
                         + rng.normal(0, 0.005)})
    rows.append({"image": "other", "codec": "webp:bpp=0.1", "enhancer": "", "enhancer_name": "",
                 "temperature": "", "status": "ok", "payload_bpp": 1, "psnr": 99,
                 "ms_ssim": 1, "lpips_squeeze": 0})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_temperature_rule_and_paired_differences(tmp_path: Path) -> None:
    rows = _write_rows(tmp_path / "rows.csv",
                       {0.0: (0.2, -0.02), 0.5: (-0.4, -0.05), 1.0: (-2.0, -0.10)})
    stats = evaluation_stats(rows, CODEC)
    assert [s.temperature for s in stats] == [None, 0.0, 0.5, 1.0]
    assert all(s.n == 30 for s in stats)
    t05 = stats[2]
    assert t05.differences["psnr"] == pytest.approx(-0.4, abs=0.05)
    assert t05.differences["lpips_squeeze"] == pytest.approx(-0.05, abs=0.003)
    # T=1 has the best LPIPS but loses 2 dB; T=0.5 is the best within 0.5 dB.
    assert choose_temperature(stats) == 0.5
    assert lpips_gain_is_significant(stats, 0.5)
    assert "enhanced T=0.5" in stats_table(stats)


def test_no_eligible_temperature_and_insignificant_gain(tmp_path: Path) -> None:
    worse = evaluation_stats(_write_rows(tmp_path / "a.csv", {1.0: (-3.0, -0.1)}), CODEC)
    assert choose_temperature(worse) is None
    tiny = evaluation_stats(_write_rows(tmp_path / "b.csv", {0.0: (0.0, -0.002)}), CODEC)
    assert choose_temperature(tiny) == 0.0
    assert not lpips_gain_is_significant(tiny, 0.0)
