"""Confidence intervals, grid bookkeeping, row files and metric probes (fast, no codecs run)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from innrsic.errors import CodecSpecError, ConfigError
from innrsic.evaluation import mean_ci
from innrsic.evaluation.grid import (
    codec_entries,
    codec_entry,
    entry_from_canonical,
    image_seed,
    parse_shard,
    rate_params,
    shard_from_env,
    slug,
)
from innrsic.evaluation.store import RowWriter, make_key, merge_row, read_rows, shard_path
from innrsic.metrics.optional import (
    ALEXNET_FILE,
    lpips_torchvision,
    probe_metrics,
)
from innrsic.metrics.perceptual import SHIPPED_SQUEEZE


def test_confidence_interval_matches_a_hand_computation() -> None:
    # [1, 2, 3, 4]: mean 2.5, sample sd sqrt(5/3) = 1.29099, t(0.975, 3) = 3.18245 (table).
    ci = mean_ci([1.0, 2.0, 3.0, 4.0])
    half = 3.18245 * math.sqrt(5 / 3) / 2  # 2.05426
    assert ci.n == 4 and ci.mean == pytest.approx(2.5)
    assert ci.half_width == pytest.approx(half, rel=1e-5)
    assert (ci.low, ci.high) == pytest.approx((2.5 - half, 2.5 + half), rel=1e-5)


def test_confidence_interval_edge_cases() -> None:
    one = mean_ci([3.0])
    assert one.mean == 3.0 and one.half_width is None and "one value" in one.note
    assert mean_ci([]).mean is None
    with_nan = mean_ci([1.0, float("nan"), 3.0])
    assert with_nan.n == 2 and with_nan.mean == pytest.approx(2.0)
    # [1, 3]: sd sqrt(2), so half = t(0.975, 1) * sqrt(2) / sqrt(2) = 12.7062 (table).
    assert with_nan.half_width == pytest.approx(12.7062, rel=1e-5)
    lossless = mean_ci([40.0, math.inf])
    assert lossless.mean == math.inf and lossless.half_width is None


def test_codec_entries_are_canonical_and_split_into_family_and_rate() -> None:
    entry = codec_entry("jp2:bpp=0.10")
    assert (entry.spec, entry.family, entry.rate) == ("jpeg2000:bpp=0.1", "jpeg2000", "bpp=0.1")
    assert codec_entry("heif:quality=30").family == "heif"
    assert entry.slug == "jpeg2000_bpp=0.1" == slug("jpeg2000:bpp=0.1")
    specs = [e.spec for e in codec_entries(["jpeg2000:bpp=0.1", "j2k:bpp=0.1", "heif"])]
    assert specs == ["jpeg2000:bpp=0.1", "heif:quality=50"]
    with pytest.raises(CodecSpecError):
        codec_entry("nosuchcodec:bpp=0.1")


def test_rate_params_are_the_codecs_own_knob_names() -> None:
    from innrsic.codecs.classical import CLASSICAL_CODECS
    from innrsic.codecs.learned import LEARNED_CODECS

    knobs = {cls.knob_param.name for cls in CLASSICAL_CODECS.values()}
    assert rate_params() == {*knobs, "bpp", "lambda"} == {"quality", "ratio", "bpp", "lambda"}
    assert all(cls.rate_params() == ("lambda",) for cls in LEARNED_CODECS.values())
    # a codec's other settings define the curve; its knob or bpp is the point on it
    entry = entry_from_canonical("jpeg2000:ratio=48,wavelet=53")
    assert (entry.family, entry.rate) == ("jpeg2000:wavelet=53", "ratio=48")
    assert entry_from_canonical("elic:lambda=0.0067").rate == "lambda=0.0067"


def test_shards_from_argument_and_torchrun_environment() -> None:
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "1", "a/b", "0/0"):
        with pytest.raises(ConfigError):
            parse_shard(bad)
    assert shard_from_env({}) == (0, 1)
    assert shard_from_env({"RANK": "2", "WORLD_SIZE": "3"}) == (2, 3)
    with pytest.raises(ConfigError, match="RANK/WORLD_SIZE"):
        shard_from_env({"RANK": "3", "WORLD_SIZE": "3"})


def test_image_seed_depends_only_on_seed_and_name() -> None:
    assert image_seed(0, "river/river52") == image_seed(0, "river/river52")
    assert image_seed(0, "river/river52") != image_seed(1, "river/river52")
    assert image_seed(0, "river/river52") != image_seed(0, "river/river53")
    assert 0 <= image_seed(7, "x") < 2**63


def test_keys_drop_the_seed_where_it_does_not_matter() -> None:
    assert make_key("a", "jpeg:quality=5") == ("a", "jpeg:quality=5", "", None, None)
    assert make_key("a", "c", "e1", 0.0, 5) == ("a", "c", "e1", 0.0, None)
    assert make_key("a", "c", "e1", 1, 5) == ("a", "c", "e1", 1.0, 5)


def test_row_files_survive_a_torn_line_and_merge_by_key(tmp_path: Path) -> None:
    path = shard_path(tmp_path, 0, 1)
    row = {"image": "a", "codec": "c", "enhancer": "", "temperature": None, "seed": None,
           "status": "ok", "psnr": 30.0}
    with RowWriter(path) as writer:
        writer.write(row)
    with open(path, "a") as handle:  # an interrupted write: half a line, no newline
        handle.write('{"image": "b", "codec"')
    assert list(read_rows(tmp_path).rows) == [("a", "c", "", None, None)]
    assert read_rows(tmp_path).bad_lines == []
    with RowWriter(path) as writer:  # reopening cuts the torn tail off
        writer.write({**row, "image": "b"})
    lines = path.read_text().splitlines()
    assert [json.loads(line)["image"] for line in lines] == ["a", "b"]
    other = shard_path(tmp_path, 1, 2)
    other.write_text("not json\n" + json.dumps({**row, "lpips_squeeze": 0.1}) + "\n")
    merged = read_rows(tmp_path)
    assert merged.rows[("a", "c", "", None, None)]["lpips_squeeze"] == 0.1
    assert merged.rows[("a", "c", "", None, None)]["psnr"] == 30.0
    assert len(merged.bad_lines) == 1 and "shard-0001-of-0002.jsonl:1" in merged.bad_lines[0]


def test_a_successful_row_beats_a_failed_one() -> None:
    ok = {"image": "a", "codec": "c", "status": "ok", "psnr": 30.0}
    failed = {"image": "a", "codec": "c", "status": "failed: boom"}
    assert merge_row(ok, failed) is ok
    assert merge_row(failed, ok)["status"] == "ok"


def test_missing_weights_are_reported_with_the_places_looked(
    tmp_path: Path, no_hub_weights: Path
) -> None:
    empty = tmp_path / "weights"
    empty.mkdir()
    probes = probe_metrics(empty)
    assert set(probes) == {"lpips_squeeze", "lpips_alex", "lpips_vgg"}
    # LPIPS-squeeze falls back to the backbone shipped with innrsic (issue 32 item 16)
    assert [name for name, p in probes.items() if p.available] == ["lpips_squeeze"]
    assert probes["lpips_squeeze"].files == {"squeeze.backbone.pth": SHIPPED_SQUEEZE}
    assert probes["lpips_alex"].status == (
        f"unavailable: {ALEXNET_FILE} not found in {empty}, {no_hub_weights}"
    )
    no_folder = probe_metrics(None)
    assert no_folder["lpips_squeeze"].available
    missing = probe_metrics(tmp_path / "nowhere.pth")["lpips_squeeze"]
    assert missing.status.endswith(f"{tmp_path / 'nowhere.pth'}: no such file or folder")
    assert "INNRSIC_WEIGHTS_DIR is not set" in no_folder["lpips_alex"].status


def test_lpips_alex_is_computed_when_torchvision_weights_are_in_the_hub_cache(
    no_hub_weights: Path,
) -> None:
    import torchvision

    torch.manual_seed(0)
    features = torchvision.models.alexnet().features.state_dict()
    no_hub_weights.mkdir(parents=True)
    # Only the `features` part matters to LPIPS; a full torchvision file has the classifier too.
    torch.save({f"features.{k}": v for k, v in features.items()}, no_hub_weights / ALEXNET_FILE)
    probe = probe_metrics(None)["lpips_alex"]
    assert probe.available and probe.status == "available"
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    path = probe.files[ALEXNET_FILE]
    assert lpips_torchvision("lpips_alex", a, a, path) == pytest.approx(0.0, abs=1e-7)
    assert lpips_torchvision("lpips_alex", a, b, path) > 1e-4


def test_weights_in_the_folder_make_a_metric_available(tmp_path: Path, no_hub_weights: Path):
    weights = tmp_path / "vgg16-397923af.pth"
    weights.write_bytes(b"")
    probe = probe_metrics(tmp_path)["lpips_vgg"]
    assert probe.available and probe.files == {weights.name: weights}
