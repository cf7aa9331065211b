"""``--device {auto,cpu,cuda}``: one option (`innrsic.cli.options.add_device_option`) on every
enhancing command and the viewer, one home for the choice (`EnhanceSettings.device`,
`resolve_device`): a bad value or cuda without a GPU is one line and exit 2 before any work;
``--device cpu`` gives the pixels of the default run on a machine without a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from innrsic.cli import main
from innrsic.codecs import make_codec
from innrsic.enhancer import EnhancerConfig, session
from innrsic.raster.image import read_image
from innrsic.rsic.coding import compress_file

CUDA_REFUSED = "device cuda: torch {} sees no CUDA GPU on this machine; use device cpu"


@pytest.fixture(scope="module")
def weights(randomised_enhancer) -> Path:
    return randomised_enhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4))


@pytest.fixture
def stream(tmp_path, crops) -> Path:
    path = tmp_path / "x.rsic"
    compress_file(crops[0], path, make_codec("jpeg:quality=30"))
    return path


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without a GPU, whatever this one has; loading a model fails the test."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def no_load(*_args, **_kwargs):
        raise AssertionError("a model was loaded before the device was checked")

    monkeypatch.setattr(session, "load_enhancer", no_load)


def _main(*args: str | Path) -> int:
    try:
        return main([str(arg) for arg in args])
    except SystemExit as exit_:  # argparse refuses a bad value itself
        return int(exit_.code or 0)


def _commands(tmp_path: Path, image: Path, stream: Path) -> dict[str, list[str | Path]]:
    return {
        "enhance": ["enhance", image, "-o", tmp_path / "y.png", "--weights",
                    "enhancer-jpeg2000-bpp0.2"],
        "decompress": ["decompress", stream, "-o", tmp_path / "y.png", "--enhance",
                       "enhancer-jpeg2000-bpp0.2"],
        "view": ["view", stream, "--no-browser", "--port", "0"],
        "evaluate": ["evaluate", "--data", tmp_path, "--codec", "jpeg:quality=30", "--out",
                     tmp_path / "grid", "--no-controls"],
    }


@pytest.mark.parametrize("command", ["enhance", "decompress", "view", "evaluate"])
def test_a_bad_device_is_one_line_and_exit_2(tmp_path, crops, stream, capsys, command) -> None:
    code = _main(*_commands(tmp_path, crops[0], stream)[command], "--device", "gpu")
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "argument --device: invalid choice: 'gpu' (choose from 'auto', 'cpu', 'cuda')" in line
    assert not (tmp_path / "y.png").exists()


@pytest.mark.parametrize("command", ["enhance", "decompress", "view", "evaluate"])
def test_cuda_without_a_gpu_is_refused_before_any_work(
    tmp_path, crops, stream, capsys, no_cuda, command
) -> None:
    code = _main(*_commands(tmp_path, crops[0], stream)[command], "--device", "cuda")
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"innrsic {command}: error: " + CUDA_REFUSED.format(torch.__version__) + \
        " (or auto, which picks cuda only where there is one)"
    assert not (tmp_path / "y.png").exists() and not (tmp_path / "grid").exists()


def test_device_without_enhance_is_refused(tmp_path, stream, capsys) -> None:
    assert _main("decompress", stream, "-o", tmp_path / "y.png", "--device", "cpu") == 2
    assert "--device only apply with --enhance MODEL" in capsys.readouterr().err


def test_device_cpu_gives_the_default_runs_pixels(tmp_path, crops, stream, weights) -> None:
    """Without a GPU, auto (the default) is the CPU: the same pixels, enhance and decompress."""
    for command, source in (("enhance", crops[0]), ("decompress", stream)):
        model = "--weights" if command == "enhance" else "--enhance"
        outputs = []
        for name, extra in (("cpu", ["--device", "cpu"]), ("auto", [])):
            target = tmp_path / f"{command}-{name}.png"
            assert _main(command, source, "-o", target, model, weights, "--tile", "64",
                         "--overlap", "8", *extra) == 0
            outputs.append(read_image(target))
        assert np.array_equal(*outputs)


def test_every_enhancing_command_has_the_same_device_option(capsys) -> None:
    helps = []
    for command in ("enhance", "decompress", "view", "evaluate"):
        assert _main(command, "--help") == 0
        text = " ".join(capsys.readouterr().out.split())
        helps.append(text[text.index("--device {auto,cpu,cuda} ") :].split(" -", 1)[0])
    assert len(set(helps)) == 1 and "(default: auto)" in helps[0]
