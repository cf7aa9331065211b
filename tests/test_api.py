"""The top-level Python API: the README's example runs, shipped names load, and a model's
default temperature travels in its weights file."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import innrsic
from innrsic.enhancer import EnhancerConfig, INNEnhancer, load_enhancer, save_enhancer
from innrsic.enhancer.apply import enhance_image
from innrsic.pretrained import installed_models

README = Path(__file__).resolve().parents[1] / "README.md"
SHIPPED = "enhancer-jpeg2000-bpp0.2"


def test_the_readme_python_example_runs(tmp_path: Path, ucm_test_paths, monkeypatch) -> None:
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "scene.png").write_bytes(ucm_test_paths[0].read_bytes())
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    enhanced = innrsic.read_image(tmp_path / "enhanced.png")
    assert enhanced.shape == (256, 256, 3)


def test_import_innrsic_is_light() -> None:
    code = "import sys, innrsic; print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert callable(innrsic.compress) and callable(innrsic.enhance_image)
    with pytest.raises(AttributeError):
        innrsic.nothing_here  # noqa: B018


def test_shipped_name_and_path_load_with_the_models_default(caplog, other_temperature) -> None:
    by_name = load_enhancer(SHIPPED)
    model = next(m for m in installed_models() if m.name == SHIPPED)
    by_path = innrsic.load_enhancer(os.fspath(model.weights))
    for net in (by_name, by_path):
        assert (net.default_temperature, net.codec) == (model.default_temperature,
                                                         "jpeg2000:bpp=0.2")
    decoded = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING):
        at_default = enhance_image(decoded, by_path, tile=0)
    assert not caplog.records
    assert np.array_equal(at_default,
                          enhance_image(decoded, by_path, model.default_temperature, tile=0))
    elsewhere = other_temperature(model.default_temperature)
    with caplog.at_level(logging.WARNING):
        other = enhance_image(decoded, by_path, elsewhere, tile=0)
    warning = f"records temperature {model.default_temperature:g} as its own; {elsewhere:g} is"
    assert warning in caplog.text
    assert not np.array_equal(other, at_default)


def test_save_records_the_default_temperature_and_codec(tmp_path: Path) -> None:
    net = INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4))
    assert load_enhancer(_saved(net, tmp_path / "plain.safetensors")).default_temperature is None
    path = tmp_path / "cold.safetensors"
    save_enhancer(net, path, default_temperature=0.0, codec="webp:bpp=0.3")
    loaded = load_enhancer(path)
    assert (loaded.default_temperature, loaded.codec) == (0.0, "webp:bpp=0.3")
    # a loaded net keeps its defaults when saved
    save_enhancer(loaded, tmp_path / "again.safetensors")
    assert load_enhancer(tmp_path / "again.safetensors").default_temperature == 0.0
    with pytest.raises(innrsic.errors.ConfigError, match="temperature"):
        save_enhancer(net, tmp_path / "bad.safetensors", default_temperature=float("nan"))


def _saved(net: INNEnhancer, path: Path) -> Path:
    save_enhancer(net, path)
    return path
