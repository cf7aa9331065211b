"""`innrsic view`'s command line: bad input is one line and exit 2 before serving; another host
than loopback is warned about; a busy port is refused."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from innrsic.cli import main


def test_missing_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", str(tmp_path / "nowhere.rsic"), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err


def test_a_folder_without_scenes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", str(tmp_path), "--no-browser"]) == 2
    assert "no .rsic files" in capsys.readouterr().err


def test_bad_port(scene: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["view", str(scene["rsic"]), "--port", "70000"])
    assert exit_info.value.code == 2 and "not a port number" in capsys.readouterr().err


def test_busy_port(scene: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["view", str(scene["rsic"]), "--port", str(port), "--no-browser"]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    # the viewer quiets the temperature warning only while it serves, not for the process
    assert logging.getLogger("innrsic.enhancer.settings").level == logging.NOTSET


def test_other_hosts_are_warned_about(
    scene: dict[str, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    served = {}

    async def serve(app, host, port, ready) -> None:
        served.update(host=host, port=port)
        ready(f"http://{host}:{port}/")

    monkeypatch.setattr("innrsic.view.server.serve", serve)
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    with caplog.at_level(logging.WARNING):
        assert main(["view", str(scene["rsic"]), "--host", "0.0.0.0", "--port", "8800"]) == 0
    assert served == {"host": "0.0.0.0", "port": 8800}
    assert "not loopback" in caplog.text and opened == ["http://0.0.0.0:8800/"]
    assert "serving 1 scene(s) at http://0.0.0.0:8800/" in capsys.readouterr().out
