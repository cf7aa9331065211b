"""Nothing lost: batches go on past bad files, interrupted batches leave only whole outputs
and say what is left, and a training run killed mid-save resumes from its last good checkpoint.

The signal tests run the real CLI in a subprocess over 20 UC-M images and signal it once the
first outputs exist.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from innrsic.codecs import make_codec
from innrsic.data import ucmerced_split
from innrsic.data.pairs import generate_pairs, read_pairs_manifest
from innrsic.enhancer import EnhancerConfig, INNEnhancer, save_enhancer
from innrsic.rsic.coding import compress_file, decompress_container
from innrsic.rsic.container import read_container
from innrsic.train import load_enhancer_config, train_enhancer
from innrsic.train.checkpoint import list_checkpoints, load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
SUMMARY = re.compile(
    r"(\d+) of (\d+) file\(s\)(?:, skipped (\d+) whose output exists)?"
    r"(?:; interrupted by (SIG[A-Z]+), (\d+) not done)?"
)


def _default_sigint() -> None:
    # A shell starting background jobs may have set SIGINT to "ignore", and Python keeps an
    # ignored SIGINT ignored; the CLI must see it as a terminal's Ctrl-C would deliver it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(cli: list[str], log: Path, *args: str | Path) -> subprocess.Popen[bytes]:
    """The CLI in a subprocess, stdout and stderr to `log` (no pipe to fill up)."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [*cli, *map(str, args)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=ENV,
            preexec_fn=_default_sigint,
        )


def wait_for(process: subprocess.Popen[bytes], ready: Callable[[], bool], log: Path) -> None:
    """Poll until `ready()`; fail if the process ends first or it takes over a minute."""
    deadline = time.monotonic() + 60
    while not ready():
        assert process.poll() is None, f"ended early:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"timed out:\n{log.read_text()}"
        time.sleep(0.02)


def interrupt_after(
    process: subprocess.Popen[bytes],
    outputs: Path,
    pattern: str,
    count: int,
    signum: int,
    log: Path,
) -> str:
    """Send `signum` once `count` files match `pattern` under `outputs`; the process's output."""
    wait_for(process, lambda: len(list(outputs.glob(pattern))) >= count, log)
    process.send_signal(signum)
    process.wait(timeout=60)
    return log.read_text()


def summary(output: str) -> tuple[int, int, int, str | None, int]:
    """(done, total, skipped, signal, not done) from a batch's summary line."""
    match = SUMMARY.search(output)
    assert match, output
    done, total, skipped, name, not_done = match.groups()
    return int(done), int(total), int(skipped or 0), name, int(not_done or 0)


def undone(output: str) -> list[str]:
    """The inputs the report lists as interrupted or not started, in order."""
    return re.findall(r"^  (?:interrupted \(no output written\)|not started): (.+)$", output, re.M)


def assert_no_leftovers(folder: Path) -> None:
    hidden = list(folder.rglob(".*"))
    assert not hidden, f"temporary files left behind: {hidden}"


@pytest.fixture(scope="module")
def images(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 UC-M test images of different classes in one folder."""
    folder = tmp_path_factory.mktemp("images")
    for ref in ucmerced_split(shared / "data", "test")[::14][:20]:
        shutil.copy(ref.path, folder / f"{ref.path.stem}.png")
    assert len(list(folder.glob("*.png"))) == 20
    return folder


@pytest.fixture(scope="module")
def enhancer_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = INNEnhancer(EnhancerConfig(blocks=2, growth=8, gaussian_growth=8))
    path = tmp_path_factory.mktemp("weights") / "enhancer.safetensors"
    save_enhancer(net, path)
    return path


def test_batch_goes_on_past_bad_files_and_lists_them(
    run_cli, images: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    good = sorted(images.glob("*.png"))[:3]
    for path in good:
        shutil.copy(path, source)
    (source / "truncated.png").write_bytes(good[0].read_bytes()[:3000])
    (source / "text.png").write_text("not an image")
    (source / "empty.png").write_bytes(b"")
    result = run_cli(
        "compress", source, "-o", tmp_path / "out", "--codec", "jpeg:quality=50",
        env=ENV, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert summary(result.stderr)[:2] == (3, 6)
    failed = re.findall(r"^  failed: (\S+): ", result.stderr, re.M)
    assert sorted(Path(p).name for p in failed) == ["empty.png", "text.png", "truncated.png"]
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == sorted(p.with_suffix(".rsic").name for p in good)

    # the same for decoding: a damaged bitstream is listed, the others are decoded
    streams = tmp_path / "out"
    (streams / "damaged.rsic").write_bytes((streams / outputs[0]).read_bytes()[:-10])
    decoded = run_cli("decompress", streams, "-o", tmp_path / "decoded", env=ENV, timeout=120)
    assert decoded.returncode == 1, decoded.stderr
    assert summary(decoded.stderr)[:2] == (3, 4)
    assert re.search(r"^  failed: \S+damaged\.rsic: .+", decoded.stderr, re.M)
    assert len(list((tmp_path / "decoded").glob("*.png"))) == 3
    assert_no_leftovers(tmp_path)


def check_interrupted_compress(output: str, images: Path, out: Path, signum: int) -> list[str]:
    """The report and the outputs of an interrupted compress batch agree; returns the undone."""
    done, total, skipped, name, not_done = summary(output)
    assert (total, skipped, name) == (20, 0, signal.Signals(signum).name), output
    assert done >= 2 and not_done >= 1 and done + not_done == 20, output
    left = undone(output)
    assert len(left) == not_done
    written = sorted(out.iterdir())
    assert len(written) == done
    assert {p.stem for p in written}.isdisjoint(Path(p).stem for p in left)
    assert {p.stem for p in written} | {Path(p).stem for p in left} == {
        p.stem for p in images.glob("*.png")
    }
    for path in written:  # whole files: checksums hold and they decode
        image = decompress_container(read_container(path.read_bytes()))
        assert image.ndim == 3 and image.shape[2] == 3
    assert_no_leftovers(out)
    return left


def test_sigint_stops_a_batch_with_whole_outputs_and_a_report(cli, images, tmp_path) -> None:
    out, log = tmp_path / "out", tmp_path / "log.txt"
    process = start(cli, log, "compress", images, "-o", out, "--codec", "jpeg2000:bpp=0.3")
    output = interrupt_after(process, out, "*.rsic", 2, signal.SIGINT, log)
    assert process.returncode == 130, output
    check_interrupted_compress(output, images, out, signal.SIGINT)


@pytest.mark.slow
def test_sigterm_stops_a_batch_and_skip_existing_finishes_it(
    cli, run_cli, images, tmp_path
) -> None:
    out, log = tmp_path / "out", tmp_path / "log.txt"
    command = ["compress", images, "-o", out, "--codec", "jpeg2000:bpp=0.3"]
    process = start(cli, log, *command)
    output = interrupt_after(process, out, "*.rsic", 2, signal.SIGTERM, log)
    assert process.returncode == 143, output
    left = check_interrupted_compress(output, images, out, signal.SIGTERM)
    finished = {p: p.read_bytes() for p in out.iterdir()}

    rerun = run_cli(*command, "--skip-existing", env=ENV, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert summary(rerun.stderr)[:3] == (len(left), 20, 20 - len(left))
    assert len(list(out.glob("*.rsic"))) == 20
    assert all(path.read_bytes() == data for path, data in finished.items())  # left alone


@pytest.mark.slow
def test_sigterm_stops_decompress_enhance_without_scratch_files(
    cli, images: Path, enhancer_weights: Path, tmp_path: Path
) -> None:
    streams = tmp_path / "streams"
    codec = make_codec("jpeg:quality=50")
    for path in sorted(images.glob("*.png")):
        compress_file(path, streams / f"{path.stem}.rsic", codec)
    out, log = tmp_path / "out", tmp_path / "log.txt"
    process = start(
        cli, log, "decompress", streams, "-o", out, "--enhance", enhancer_weights, "--threads", "1"
    )
    output = interrupt_after(process, out, "*.png", 2, signal.SIGTERM, log)
    assert process.returncode == 143, output
    done, total, _, name, not_done = summary(output)
    assert (total, name, done + not_done) == (20, "SIGTERM", 20) and not_done >= 1
    written = sorted(out.iterdir())
    assert len(written) == done
    for path in written:  # complete PNGs: every chunk CRC checks and the pixels load
        with Image.open(path) as image:
            image.load()
            assert image.size[0] > 200 and image.mode == "RGB"
    assert_no_leftovers(tmp_path)  # no scratch folder (.tmpdir), no .tmp file


@pytest.mark.slow
def test_sigterm_stops_pairs_workers_and_records_every_finished_pair(cli, images, tmp_path):
    out, log = tmp_path / "pairs", tmp_path / "log.txt"
    process = start(
        cli, log, "pairs", "--codec", "jpeg2000:bpp=0.1", "--data", images, "--out", out,
        "--workers", "2", "--no-progress",
    )  # fmt: skip
    output = interrupt_after(process, out / "decoded", "*.png", 2, signal.SIGTERM, log)
    assert process.returncode == 143, output
    recorded = {entry.name for entry in read_pairs_manifest(out).entries}
    assert 2 <= len(recorded) < 20  # stopped early: the queued images were dropped
    assert recorded == {p.stem for p in (out / "decoded").iterdir()}
    assert recorded == {p.stem for p in (out / "gt").iterdir()}
    assert_no_leftovers(out)


# --- training ---------------------------------------------------------------------------------

STALLING_RUNNER = """
import sys, time
import innrsic.train.checkpoint as checkpoint
from innrsic.cli import main

atomic_write = checkpoint.write_with_atomic

def stalling_write(path, writer):
    def write(handle):
        writer(handle)
        if path.name == sys.argv[1]:
            handle.flush()
            print("stalled in save", flush=True)
            time.sleep(300)
    atomic_write(path, write)

checkpoint.write_with_atomic = stalling_write
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def training_config(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny enhancer run on 4 real UC-M pairs: 12 steps, a checkpoint every 4."""
    folder = tmp_path_factory.mktemp("training")
    refs = ucmerced_split(shared / "data", "train")[::301][:4]
    result = generate_pairs("jpeg2000:bpp=0.1", refs, folder / "pairs", progress=False)
    assert result.ok
    config = folder / "tiny.yaml"
    config.write_text(
        "model: {blocks: 2, growth: 8, gaussian_growth: 8}\n"
        f"data: {{codec: 'jpeg2000:bpp=0.1', train: ['{folder / 'pairs'}'], crop_size: 32, "
        "workers: 0}\n"
        "loss: {feature_backbone: none}\n"
        "train: {steps: 12, batch_size: 4, log_every: 1, image_every: 1000, "
        "checkpoint_every: 4, keep_checkpoints: 3}\n"
        "optim: {lr: 0.001}\n"
    )
    return config


@pytest.mark.slow
def test_sigkill_during_a_save_resumes_from_the_last_good_checkpoint(
    run_cli, training_config: Path, tmp_path: Path
) -> None:
    run, log = tmp_path / "killed", tmp_path / "log.txt"
    train = ["train", "enhancer", "--config", training_config, "--run-dir", run]
    runner = [sys.executable, "-c", STALLING_RUNNER, "step_00000008.pt"]
    process = start(runner, log, *train)
    wait_for(process, lambda: "stalled in save" in log.read_text(), log)
    process.kill()  # SIGKILL: no handler, no cleanup
    process.wait(timeout=30)
    assert [step for step, _ in list_checkpoints(run)] == [4]
    partial = list((run / "checkpoints").glob(".step_00000008.pt.*.tmp"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0
    assert not (run / "final.safetensors").exists()

    resumed = run_cli(*train, "--resume", env=ENV, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert re.search(r"removed \S+\.step_00000008\.pt\.\S+\.tmp", resumed.stderr)
    assert re.search(r"resumed from \S+step_00000004\.pt at step 4", resumed.stderr)
    assert "trained to step 12" in resumed.stdout
    assert [step for step, _ in list_checkpoints(run)] == [4, 8, 12]
    assert_no_leftovers(run / "checkpoints")

    # the interrupted and resumed run ends exactly where an uninterrupted one does
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = load_enhancer_config(training_config, [f"run_dir={tmp_path / 'straight'}"])
        assert train_enhancer(config).step == 12
        # a newest checkpoint that does not load (damaged on disk) is passed over
        latest = run / "checkpoints" / "step_00000012.pt"
        latest.write_bytes(latest.read_bytes()[:1000])
        (run / "final.safetensors").unlink()
        again = load_enhancer_config(training_config, [f"run_dir={run}"])
        assert train_enhancer(again, resume=True).step == 12
    finally:
        torch.set_num_threads(threads)
    straight = load_file(tmp_path / "straight" / "final.safetensors")
    killed = load_file(run / "final.safetensors")
    assert straight.keys() == killed.keys()
    assert all(torch.equal(straight[k], killed[k]) for k in straight)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_before_training_stops(
    cli, training_config: Path, tmp_path: Path
) -> None:
    run, log = tmp_path / "run", tmp_path / "log.txt"
    endless = ["--set", "train.steps=100000", "--set", "train.checkpoint_every=100000"]
    train = ["train", "enhancer", "--config", training_config, "--run-dir", run, *endless]
    process = start(cli, log, *train)
    wait_for(process, lambda: "step 3/100000" in log.read_text(), log)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    output = log.read_text()
    assert process.returncode == 143, output
    assert "interrupted (SIGTERM)" in output
    [(step, path)] = list_checkpoints(run)
    assert step >= 3 and f"checkpoint written at step {step}" in output
    assert load_checkpoint(path)["step"] == step
    assert_no_leftovers(run / "checkpoints")
