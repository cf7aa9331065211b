"""`innrsic evaluate` as a user runs it: warnings given before the grid runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import innrsic.evaluation
from innrsic.cli import main
from innrsic.errors import ConfigError

SHIPPED = "enhancer-jpeg2000-bpp0.2"


def test_enhancer_behind_another_codec_is_warned_once_per_spec(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path,
    ucm_test_paths: list[Path], capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 32, item 10: the 0.2 bpp model on 0.4 bpp (and WebP) streams is warned about,
    once per codec spec, before any work; its own codec is not."""

    def stop(*args: object, **kwargs: object) -> None:
        raise ConfigError("stopped where the grid would start")

    monkeypatch.setattr(innrsic.evaluation, "run_evaluation", stop)
    folder = ucm_test_paths[0].parent
    assert main(["evaluate", "--data", str(folder), "--limit", "1", "--out", str(tmp_path),
                 "--codec", "jpeg2000:bpp=0.2", "JP2:bpp=0.4", "jpeg2000:bpp=0.4",
                 "webp:quality=30", "--enhancer", SHIPPED, "--no-controls"]) == 2
    assert "stopped where the grid would start" in capsys.readouterr().err
    mismatches = [r.getMessage() for r in caplog.records if "trained behind" in r.getMessage()]
    assert mismatches == [
        f"{SHIPPED} was trained behind jpeg2000:bpp=0.2; this stream is {spec}, so it may "
        "restore it badly" for spec in ("jpeg2000:bpp=0.4", "webp:quality=30")
    ]
