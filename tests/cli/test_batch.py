"""Batches on a real dask.distributed cluster of worker processes: the same bytes as in this
process, a bad file among good ones, a worker killed mid-batch, an interrupt, --workers."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster, get_task_stream

from innrsic.cli import main
from innrsic.cli.batch import BatchReport, remove_orphans, run_jobs
from innrsic.codecs import make_codec
from innrsic.errors import CodecSpecError
from innrsic.raster.image import read_image, write_image
from innrsic.rsic.coding import compress_file
from innrsic.rsic.container import ContainerReader
from innrsic.rsic.tile_parallel import cluster_encoder

CODEC = "jpeg2000:bpp=0.5"
ENHANCER = "enhancer-jpeg2000-bpp0.2"


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """A LocalCluster of 2 worker processes with 1 thread each, started here."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.CRITICAL, env={"OMP_NUM_THREADS": "1"},
    ) as cluster, Client(cluster) as connected:
        yield connected


@pytest.fixture(scope="module")
def images(ucm_test_paths: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of six 96x96 UC-M crops and one file that is no image."""
    folder = tmp_path_factory.mktemp("images")
    for number, path in enumerate(ucm_test_paths * 2):
        left = 96 * (number % 2)
        write_image(folder / f"{number}_{path.name}", read_image(path)[:96, left:left + 96])
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too) by relative name."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_compress_decompress_enhance_same_bytes_as_serial(
    client: Client, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--scheduler (a cluster started here) writes the files --workers 1 writes, byte for byte,
    and reports the bad file while the rest completes (exit status 1)."""
    address = client.scheduler.address
    runs = {"serial": ["--workers", "1"], "cluster": ["--scheduler", address]}
    for name, where in runs.items():
        out = tmp_path / name
        assert main(["compress", str(images), "-o", str(out / "rsic"), "--codec", CODEC,
                     *where]) == 1
        assert "compressed 6 of 7 file(s), 1 failed" in capsys.readouterr().err
        assert main(["decompress", str(out / "rsic"), "-o", str(out / "png"), *where]) == 0
        assert main(["decompress", str(out / "rsic"), "-o", str(out / "enhanced"), "--enhance",
                     ENHANCER, "--threads", "1", *where]) == 0
    serial, cluster = files(tmp_path / "serial"), files(tmp_path / "cluster")
    assert len(serial) == 18 and not any(Path(name).name.startswith(".") for name in serial)
    assert cluster == serial


@pytest.mark.slow
def test_one_scene_tile_parallel_same_bytes_as_serial(
    client: Client, shared: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One scene's tiles coded on the cluster's workers give the serial file byte for byte,
    reconstruction checksums and the rate search's choices included."""
    scene = tmp_path / "scene.png"
    write_image(scene, read_image(shared / "data" / "dota" / "P0168.png")[:768, :1280])
    outputs = {}
    tasks = {}
    for name, where in {"serial": ["--workers", "1"],
                        "cluster": ["--scheduler", client.scheduler.address]}.items():
        outputs[name] = tmp_path / f"{name}.rsic"
        with get_task_stream(client) as stream:
            assert main(["compress", str(scene), "-o", str(outputs[name]), "--codec", CODEC,
                         "--tile", "256", *where]) == 0
        tasks[name] = [task for task in stream.data if "encode_on_worker" in task["key"]]
        assert "15 tiles of 256" in capsys.readouterr().out
    assert not tasks["serial"] and len(tasks["cluster"]) == 15  # one task per tile
    assert outputs["cluster"].read_bytes() == outputs["serial"].read_bytes()
    with ContainerReader(outputs["cluster"]) as reader:
        assert len(reader.metadata["recon_crc32"]) == 15 * 8


@pytest.mark.slow
def test_tile_parallel_failure_raises_and_writes_nothing(
    client: Client, ucm_test_paths: list[Path], tmp_path: Path
) -> None:
    """A batch that fails on a worker (here: a codec spec the workers cannot make) raises its
    error in the client; no output and no temporary file is left."""
    encoder = cluster_encoder(client, "jpeg2000:ratio=-1")
    with pytest.raises(CodecSpecError, match="out of range"):
        compress_file(ucm_test_paths[0], tmp_path / "out.rsic", make_codec(CODEC), 64,
                      encoder=encoder)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def scenes(shared: Path) -> list[Path]:
    """24 UC-M test-split images (256x256): a batch of a few seconds on two workers."""
    folder = shared / "data" / "ucmerced"
    return [folder / kind / f"{kind}{n}.png" for kind in ("agricultural", "airplane")
            for n in range(46, 58)]


def compress_jobs(scenes: list[Path], out: Path) -> list[tuple[Path, Path]]:
    return [(path, out / path.with_suffix(".rsic").name) for path in scenes]


# partial of library functions only: the workers cannot import this test module
COMPRESS = functools.partial(compress_file, codec=make_codec("jpeg2000:bpp=0.2"))


@pytest.mark.slow
def test_killed_worker_tasks_rerun_outputs_whole(
    client: Client, scenes: list[Path], tmp_path: Path
) -> None:
    """SIGKILL one of two worker processes mid-batch: its tasks are rerun on the other (or its
    restart); every output is whole (the serial bytes), each job is reported once, and no
    temporary file remains."""
    serial = run_jobs(compress_jobs(scenes, tmp_path / "serial"), COMPRESS, "compress")
    assert len(serial.done) == len(scenes)
    jobs = compress_jobs(scenes, tmp_path / "out")
    victim = next(iter(client.run(os.getpid).values()))
    threading.Timer(1.0, os.kill, (victim, signal.SIGKILL)).start()
    report = run_jobs(jobs, COMPRESS, "compress", client=client)
    remove_orphans(target for _, target in jobs)
    assert report.interrupt is None and not report.failed
    assert sorted(report.done) == sorted(jobs)
    assert victim not in client.run(os.getpid).values()  # the kill happened
    assert files(tmp_path / "out") == files(tmp_path / "serial")


@pytest.mark.slow
def test_interrupt_cancels_and_reports(
    client: Client, scenes: list[Path], tmp_path: Path
) -> None:
    """Ctrl-C mid-batch cancels the rest: every file is done (its output whole) or not done,
    and the report says which."""
    jobs = compress_jobs(scenes, tmp_path / "out")
    # Python keeps a SIGINT ignored when started from a shell's background job (nohup ... &);
    # deliver it as a terminal's Ctrl-C would, whatever started the suite.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        report = run_jobs(jobs, COMPRESS, "compress", client=client)
    finally:
        signal.signal(signal.SIGINT, inherited)
    time.sleep(1.0)  # cancelled tasks already running finish; then no writer is left
    remove_orphans(target for _, target in jobs)
    assert report.interrupt is not None and report.exit_code == 130
    assert report.done and report.not_done
    assert len(report.done) + len(report.not_done) == len(jobs)
    written = files(tmp_path / "out")
    assert {target.name for _, target in report.done} <= set(written)
    for name in written:  # done ones, and cancelled ones that were running: whole files
        with ContainerReader(tmp_path / "out" / name) as container:
            assert container.codec_spec == "jpeg2000:bpp=0.2"
    # issue 32, item 12: only the tasks the two workers were running read "interrupted"
    assert report.started <= set(report.not_done) and len(report.started) <= 2
    assert len(report.not_done) > 2, "interrupted too late to see files not started"


@pytest.mark.slow
def test_workers_option_starts_a_local_cluster(run_cli, images: Path, tmp_path: Path) -> None:
    """`--workers 2` in a subprocess: a LocalCluster of its own, same bytes as in-process."""
    for name, workers in (("one", "1"), ("two", "2")):
        result = run_cli("compress", images, "-o", tmp_path / name, "--codec", CODEC,
                         "--workers", workers)
        assert result.returncode == 1, result.stderr
        assert "compressed 6 of 7 file(s), 1 failed" in result.stderr
    assert files(tmp_path / "two") == files(tmp_path / "one")
    for path in (tmp_path / "two").iterdir():
        with ContainerReader(path) as container:
            assert container.codec_spec == CODEC


def test_summary_says_which_files_were_started(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 32, item 12: after an interrupt, the files in progress read "interrupted", the
    others "not started", however the batch ran; a reason naming its file is not prefixed
    with the name again."""
    report = BatchReport(
        failed=[(Path("fake.png"), "fake.png: not a readable image"),
                (Path("b.png"), "bad size")],
        not_done=[Path("c.png"), Path("d.png"), Path("e.png")],
        started={Path("d.png")},
        interrupt=KeyboardInterrupt(),
    )
    report.print_summary("compressed")
    lines = capsys.readouterr().err.splitlines()
    assert lines[1:6] == [
        "  failed: fake.png: not a readable image",
        "  failed: b.png: bad size",
        "  not started: c.png",
        "  interrupted (no output written): d.png",
        "  not started: e.png",
    ]


def test_failures_listed_once_and_a_finished_batch_refused_up_front(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 32, item 12: a bad file is listed once, by its name once; rerunning a finished
    batch without --force is one line (exit 2), not one "exists" line per file."""
    out = tmp_path / "out"
    argv = ["compress", str(images), "-o", str(out), "--codec", "jpeg:quality=50",
            "--workers", "1"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert error.count("broken.png") == 1, error
    before = files(out)
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error == (f"innrsic compress: error: 6 of 7 outputs exist, e.g. {out}/0_airplane50.rsic"
                     " (use --force to replace them, or --skip-existing to do the rest)\n")
    assert files(out) == before


@pytest.mark.slow
def test_workers_print_no_library_warning(run_cli, images: Path, tmp_path: Path) -> None:
    """Issue 32, item 8: `--workers 2` while another program holds port 8787 (a dask
    dashboard's default) prints no dask warning."""
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):  # already held by another program: the case itself
            busy.bind(("", 8787))
            busy.listen()
        result = run_cli("compress", images, "-o", tmp_path / "out", "--codec", CODEC,
                         "--workers", "2")
    assert result.returncode == 1, result.stderr
    assert "Warning" not in result.stderr and "8787" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[0] == "compressed 6 of 7 file(s), 1 failed"


def test_library_warnings_are_logged_not_printed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 32, item 8: a library's warning during a command is one debug log line."""
    import innrsic.cli.models

    def warn(args: object) -> int:
        warnings.warn("Port 8787 is already in use.\nPerhaps you already have a cluster",
                      UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(innrsic.cli.models, "run", warn)
    with caplog.at_level(logging.DEBUG, logger="innrsic.warnings"):
        assert main(["models"]) == 0
    assert capsys.readouterr().err == ""
    assert caplog.messages == [
        "UserWarning: Port 8787 is already in use. Perhaps you already have a cluster"
    ]
