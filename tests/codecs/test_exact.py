"""Learned codecs decode bit-identically across CPU kernel sets, thread counts and oneDNN on or
off: a payload encoded under any of them decodes, under any other, to the encoder's own
reconstruction (and the same bytes come out of every encoder setting of one kernel set).

Each kernel set (``ATEN_CPU_CAPABILITY``: ``default``, ``avx2`` and ``avx512`` where the CPU has
them) runs in its own process; threads (1, 2) and oneDNN (on, off) vary inside it. Models: a
randomly initialised small model of every architecture, and the reference ELIC checkpoint as
the authors ship it (.pth.tar.xz) and converted to innrsic's format.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from innrsic.codecs.architectures import ARCHITECTURES
from innrsic.codecs.exact import ExactConv, exact_model, exp_exact, sigmoid_exact
from innrsic.codecs.learned_checkpoint import (
    build_model,
    convert_checkpoint,
    save_learned_checkpoint,
)
from innrsic.compute.cpu import cpu_info
from innrsic.errors import WeightsError
from innrsic.raster.image import read_image

SMALL = {
    "elic": {"N": 8, "M": 16, "groups": [2, 2, 4, 8]},
    "cheng2020-anchor": {"N": 8},
    "cheng2020-attn": {"N": 8},
}

WORKER = r"""
import json, sys, zlib
from pathlib import Path
import numpy as np
import torch
from innrsic.codecs import make_codec

work, capability, encode = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
specs = json.loads((work / "specs.json").read_text())
image = np.load(work / "image.npy")
# (threads, oneDNN): each factor takes both values among the encoders, and the other value
# of each among the decoders.
encoders, decoders = [(1, True), (2, False)], [(1, False), (2, True)]
codecs = [make_codec(spec) for spec in specs]
failures, decoded = [], []

def under(setting, call):
    torch.set_num_threads(setting[0])
    with torch.backends.mkldnn.flags(enabled=setting[1]):
        return call()

def crc(pixels):
    return zlib.crc32(np.ascontiguousarray(pixels).data)

if encode:
    for index, codec in enumerate(codecs):
        made = [under(s, lambda: codec.encode_and_reconstruct(image)) for s in encoders]
        outputs = {(payload, crc(pixels)) for payload, pixels in made}
        if len(outputs) != 1:
            failures.append(f"{specs[index]}: {capability} encoders disagree")
        payload, check = made[0][0], crc(made[0][1])
        (work / f"{capability}-{index}.bin").write_bytes(payload)
        (work / f"{capability}-{index}.crc").write_text(str(check))
for path in sorted(work.glob("*.bin")):
    index = int(path.stem.rsplit("-", 1)[1])
    expected = int(path.with_suffix(".crc").read_text())
    for setting in decoders:
        pixels = under(setting, lambda: codecs[index].decode(path.read_bytes()))
        where = f"{path.stem}@{capability}-{setting[0]}-{int(setting[1])}"
        (decoded if crc(pixels) == expected else failures).append(where)
print(json.dumps({"failures": failures, "decoded": decoded}))
"""


def _capabilities() -> list[str]:
    flags = cpu_info().flags
    found = ["default"]
    if "avx2" in flags:
        found.append("avx2")
    if "avx512f" in flags and "avx512bw" in flags:
        found.append("avx512")
    return found


def _run(work: Path, capability: str, encode: bool) -> dict:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(work), capability, str(int(encode))],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _small_specs(directory: Path) -> list[str]:
    specs = []
    for seed, arch in enumerate(ARCHITECTURES):
        torch.manual_seed(seed)
        model = build_model(arch, SMALL.get(arch, {"N": 8, "M": 12}))
        path = directory / f"{arch}-small.safetensors"
        save_learned_checkpoint(model, arch, path)
        specs.append(f"{arch}:weights={path}")
    return specs


@pytest.mark.slow
def test_payloads_decode_bit_identically_under_every_kernel_set_thread_count_and_onednn(
    tmp_path: Path, reference_dir: Path, ucm_test_paths: list[Path]
):
    capabilities = _capabilities()
    if len(capabilities) < 2:
        pytest.skip("this CPU offers PyTorch one kernel set only (no AVX2)")
    image = np.ascontiguousarray(read_image(ucm_test_paths[0])[:64, :64])
    np.save(tmp_path / "image.npy", image)
    authors = reference_dir / "elic_original_checkpoint.pth.tar.xz"
    converted = tmp_path / "elic-reference.safetensors"
    convert_checkpoint(authors, converted)
    specs = [*_small_specs(tmp_path), f"elic:weights={authors}", f"elic:weights={converted}"]
    (tmp_path / "specs.json").write_text(json.dumps(specs))
    results = [_run(tmp_path, capability, encode=True) for capability in capabilities]
    results += [_run(tmp_path, capability, encode=False) for capability in capabilities[:-1]]
    failures = [failure for result in results for failure in result["failures"]]
    assert not failures, failures
    payloads = [f"{c}-{i}" for c in capabilities for i in range(len(specs))]
    decoders = [f"{c}-{t}-{m}" for c in capabilities for t, m in ((1, 0), (2, 1))]
    wanted = {f"{p}@{d}" for p in payloads for d in decoders}
    assert {d for result in results for d in result["decoded"]} == wanted


def test_exp_and_sigmoid_are_accurate():
    x = torch.linspace(-40, 40, 100001, dtype=torch.float64)
    assert torch.allclose(exp_exact(x), torch.exp(x), rtol=1e-14, atol=0)
    assert torch.allclose(sigmoid_exact(x), torch.sigmoid(x), rtol=1e-13, atol=1e-300)


@pytest.mark.filterwarnings("ignore:TF32 acceleration")
def test_exact_convolution_is_close_to_float_and_the_same_under_every_setting(restore_threads):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(24, 16, 5, padding=2)
    deconv = torch.nn.ConvTranspose2d(16, 8, 5, stride=2, padding=2, output_padding=1)
    x = torch.randn(1, 24, 20, 20) * 30
    for layer, inputs in ((conv, x), (deconv, conv(x).detach())):
        exact = ExactConv(layer)
        results = []
        for threads in (1, 2):
            for mkldnn in (True, False):
                torch.set_num_threads(threads)
                with torch.backends.mkldnn.flags(enabled=mkldnn):
                    results.append(exact(inputs))
        assert all(torch.equal(results[0], other) for other in results[1:])
        reference = layer(inputs).detach().double()
        assert (results[0] - reference).abs().max() <= 1e-3 * reference.abs().max()


def test_a_decoder_side_module_without_an_exact_evaluation_is_refused():
    model = build_model("mbt2018-mean", {"N": 8, "M": 12})
    model.g_s.append(torch.nn.Sigmoid())
    with pytest.raises(WeightsError, match=r"g_s\.\d+: Sigmoid has no exact evaluation"):
        exact_model(model)
