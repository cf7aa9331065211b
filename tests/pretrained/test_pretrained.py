"""The shipped-model registry: records, digests, name resolution, codec matching."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from innrsic.enhancer import EnhancerConfig, INNEnhancer, load_enhancer, save_enhancer
from innrsic.errors import WeightsError
from innrsic.pretrained import (
    find_model,
    installed_models,
    model_for_codec,
    resolve_enhancer,
)

TINY = EnhancerConfig(blocks=1, growth=4, gaussian_growth=4)


def _ship(folder: Path, name: str, codec: str, temperature: float = 0.0,
          covers: tuple[list[str], list[float]] | None = None) -> Path:
    weights = folder / f"{name}.safetensors"
    save_enhancer(INNEnhancer(TINY), weights, half=True)
    (folder / f"{name}.md").write_text(f"# {name}\n", encoding="utf-8")
    record = {
        "name": name,
        "kind": "enhancer",
        "codec": codec,
        "covers": {"codecs": covers[0], "bpp": covers[1]} if covers else
        {"codecs": [codec.split(":")[0]], "bpp": [0.05, 1.0]},
        "default_temperature": temperature,
        "weights": weights.name,
        "card": f"{name}.md",
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "summary": "test model",
    }
    (folder / f"{name}.json").write_text(json.dumps(record), encoding="utf-8")
    return weights


def test_records_are_listed_sorted_and_resolved(tmp_path: Path) -> None:
    _ship(tmp_path, "enh-b-bpp0.4", "jpeg2000:bpp=0.4", 0.5)
    weights = _ship(tmp_path, "enh-a", "jpeg2000:bpp=0.1")
    models = installed_models(tmp_path)
    assert [m.name for m in models] == ["enh-a", "enh-b-bpp0.4"]
    assert models[1].bpp == 0.4 and models[1].codec_family == "jpeg2000"
    assert resolve_enhancer("enh-b-bpp0.4", tmp_path) == (
        tmp_path / "enh-b-bpp0.4.safetensors", 0.5)
    assert resolve_enhancer(str(weights), tmp_path) == (weights, None)
    load_enhancer(find_model("enh-a", tmp_path).weights)


def test_codec_matching_takes_the_most_specialised_covering_model(tmp_path: Path) -> None:
    _ship(tmp_path, "enh-low", "jpeg2000:bpp=0.1", covers=(["jpeg2000"], [0.05, 0.2]))
    _ship(tmp_path, "enh-high", "jpeg2000:bpp=0.4", covers=(["jpeg2000"], [0.2, 0.9]))
    _ship(tmp_path, "enh-blind", "jpeg:bpp=0.4", covers=(["jpeg", "webp", "jpeg2000"],
                                                         [0.1, 1.0]))
    assert model_for_codec("jpeg2000:bpp=0.15", folder=tmp_path).name == "enh-low"
    assert model_for_codec("jpeg2000:bpp=0.3", folder=tmp_path).name == "enh-high"
    assert model_for_codec("jpeg2000:ratio=40", 0.3, folder=tmp_path).name == "enh-high"
    assert model_for_codec("jpeg2000:bpp=0.95", folder=tmp_path).name == "enh-blind"
    assert model_for_codec("jpeg2000:bpp=1.5", folder=tmp_path) is None
    assert model_for_codec("webp:quality=30", 0.5, folder=tmp_path).name == "enh-blind"
    assert model_for_codec("webp:quality=30", folder=tmp_path) is None  # rate unknown
    assert model_for_codec("avif:bpp=0.3", folder=tmp_path) is None


def test_every_shipped_model_covers_its_own_codec_and_rate() -> None:
    for model in installed_models():
        assert model.bpp is not None
        assert model.covers.covers(model.codec_family, model.bpp)
        assert model_for_codec(model.codec) == model


def test_altered_weights_are_refused(tmp_path: Path) -> None:
    weights = _ship(tmp_path, "enh", "jpeg2000:bpp=0.1")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        installed_models(tmp_path)


def test_unknown_names_and_bad_records_are_clear_errors(tmp_path: Path) -> None:
    _ship(tmp_path, "enh", "jpeg2000:bpp=0.1")
    with pytest.raises(WeightsError, match="installed: enh"):
        find_model("nope", tmp_path)
    with pytest.raises(WeightsError, match="no such weights file"):
        resolve_enhancer("missing/file.safetensors", tmp_path)
    with pytest.raises(WeightsError, match="no such weights file"):
        resolve_enhancer("missing.pth", tmp_path)
    with pytest.raises(WeightsError, match="installed: enh"):
        resolve_enhancer("enh-bpp0.3", tmp_path)
    (tmp_path / "broken.json").write_text('{"name": "broken"}', encoding="utf-8")
    with pytest.raises(WeightsError, match="exactly the keys"):
        installed_models(tmp_path)
    record = json.loads((tmp_path / "enh.json").read_text(encoding="utf-8"))
    for covers in ({"codecs": ["jpeg"]}, {"codecs": [], "bpp": [0.1, 0.2]},
                   {"codecs": ["jpeg"], "bpp": [0.3, 0.2]}):
        (tmp_path / "broken.json").write_text(json.dumps({**record, "covers": covers}))
        with pytest.raises(WeightsError, match="covers"):
            installed_models(tmp_path)


def test_every_shipped_model_loads_and_has_a_card(run_cli) -> None:
    models = installed_models()
    for model in models:
        net = load_enhancer(model.weights)
        assert net.config.latent_channels == 3
        assert model.card.read_text(encoding="utf-8").startswith("# ")
    listing = run_cli("models", "--json", check=True)
    assert [m["name"] for m in json.loads(listing.stdout)] == [m.name for m in models]


@pytest.mark.slow
def test_a_temperature_other_than_the_models_default_is_warned_about(
    run_cli, ucm_test_paths: list[Path], tmp_path: Path
) -> None:
    model = installed_models()[0]
    name, other = model.name, 1.0 if model.default_temperature != 1.0 else 0.0
    runs = {}
    for label, extra in (("default", []), ("other", ["--temperature", f"{other:g}"])):
        out = tmp_path / f"{label}.png"
        runs[label] = run_cli("enhance", ucm_test_paths[0], "-o", out, "--weights", name, *extra)
        assert runs[label].returncode == 0, runs[label].stderr
        assert out.is_file()
    assert "warning" not in runs["default"].stderr.lower()
    expected = (f"{name} (shipped, trained behind {model.codec}) runs at temperature "
                f"{model.default_temperature:g} by default; {other:g} is the")
    assert expected in runs["other"].stderr
