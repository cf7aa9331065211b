"""What bit-exact learned coding costs: encode / decode MPix/s of payload format 2 (the exact
decoder side, `innrsic.codecs.exact`) against format 1's float32 path (CompressAI's network as
loaded, one intra-op thread: what innrsic ran before), and the CLI start-up.

    python benchmarks/exact_coding.py --out benchmarks/results/exact_coding.csv
    python benchmarks/exact_coding.py --quick --out /tmp/exact_coding.csv

Weights: the reference ELIC checkpoint converted to innrsic's format (random values in the
authors' layout: the network's speed is real, rate and quality are not) and, with --quick, a
randomly initialised small mbt2018-mean. Input: a UC Merced mosaic. Each path is timed
`--rounds` times (median): encode includes the reconstruction the checksum needs, as
``innrsic compress`` does. Start-up: ``import compressai`` (CompressAI's own ``__init__``,
point-cloud datasets and torch_geometric included; what innrsic imported before) against
innrsic's import of the image-codec parts (`innrsic.codecs.compressai_import`), each in a
fresh interpreter, median of `--rounds`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

COLUMNS = ["case", "size", "threads", "path", "encode_s", "decode_s", "encode_mpix_s",
           "decode_mpix_s", "identical", "seconds", "load1_start", "load1_end"]  # fmt: skip
IMPORTS = {
    "import compressai (before)": "import compressai",
    "innrsic codec import (after)": "import innrsic.codecs.learned_checkpoint",
}


def _legacy(loaded: Any, image: Any) -> tuple[float, float, Any]:
    """Format 1's float32 path: compress + reconstruction, then decompress."""
    import torch.nn.functional as F

    from innrsic.codecs.learned import _padded_size, _reconstruct
    from innrsic.codecs.learned_checkpoint import deterministic_cpu

    h, w = image.shape[:2]
    ph, pw = _padded_size(h, w)
    x = F.pad(common.to_tensor(image), (0, pw - w, 0, ph - h), mode="replicate")
    def encode() -> Any:
        out = loaded.model.compress(x)
        _reconstruct(loaded, loaded.model, out)
        return out

    with deterministic_cpu():
        encode_s, _, out = common.timed(encode)
        decode_s, _, _ = common.timed(lambda: loaded.model.decompress(out["strings"], out["shape"]))
    return encode_s, decode_s, None


def _exact(codec: Any, image: Any) -> tuple[float, float, bool]:
    """Format 2: ``encode_and_reconstruct``, then ``decode``; whether they agree."""
    import numpy as np

    encode_s, _, (payload, pixels) = common.timed(lambda: codec.encode_and_reconstruct(image))
    decode_s, _, decoded = common.timed(lambda: codec.decode(payload))
    return encode_s, decode_s, bool(np.array_equal(decoded, pixels))


def coding_rows(spec: str, case: str, sizes: list[int], threads: list[int], rounds: int
                ) -> list[dict[str, Any]]:
    import torch

    from innrsic.codecs import make_codec

    codec = make_codec(spec)
    loaded = codec.loaded
    loaded.exact  # noqa: B018 (built once, outside the timings)
    rows = []
    for size in sizes:
        image = common.mosaic(size, size)
        for count in threads:
            torch.set_num_threads(count)
            for path in ("format 2 exact", "format 1 float32"):
                start = common.load1()
                encodes, decodes, identical = [], [], True
                for _ in range(rounds):
                    if path == "format 2 exact":
                        encode, decode, same = _exact(codec, image)
                        identical = bool(identical) and same
                    else:
                        encode, decode, identical = _legacy(loaded, image)
                    encodes.append(encode)
                    decodes.append(decode)
                mpix = size * size / 1e6
                rows.append({
                    "case": case, "size": size, "threads": count, "path": path,
                    "encode_s": common.median(encodes), "decode_s": common.median(decodes),
                    "encode_mpix_s": mpix / common.median(encodes),
                    "decode_mpix_s": mpix / common.median(decodes), "identical": identical,
                    "load1_start": start, "load1_end": common.load1(),
                })  # fmt: skip
    return rows


def startup_rows(rounds: int) -> list[dict[str, Any]]:
    rows = []
    for case, code in IMPORTS.items():
        start, times = common.load1(), []
        for _ in range(rounds):
            began = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
            times.append(time.perf_counter() - began)
        rows.append({"case": case, "path": "startup", "seconds": common.median(times),
                     "load1_start": start, "load1_end": common.load1()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/exact_coding.csv"))
    parser.add_argument("--quick", action="store_true", help="small model, 64 px, one round")
    parser.add_argument("--sizes", default="256,512", help="image sides, comma-separated")
    parser.add_argument("--threads", default="1,2", help="torch threads, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        if args.quick:
            import torch

            from innrsic.codecs.learned_checkpoint import build_model, save_learned_checkpoint

            torch.manual_seed(0)
            path = Path(scratch) / "mbt.safetensors"
            model = build_model("mbt2018-mean", {"N": 8, "M": 12})
            save_learned_checkpoint(model, "mbt2018-mean", path)
            rows += coding_rows(f"mbt2018-mean:weights={path}", "mbt2018-mean small", [64],
                                threads, 1)
            rows += startup_rows(1)
        else:
            from innrsic.codecs.learned_checkpoint import convert_checkpoint

            path = Path(scratch) / "elic.safetensors"
            convert_checkpoint(common.elic_checkpoint(), path)
            sizes = [int(s) for s in args.sizes.split(",")]
            rows += coding_rows(f"elic:weights={path}", "elic reference", sizes, threads,
                                args.rounds)
            rows += startup_rows(args.rounds)
    meta = {"command": " ".join(sys.argv), "machine": common.machine()}
    common.write_results(rows, args.out, meta, COLUMNS)
    common.print_table(rows, COLUMNS)


if __name__ == "__main__":
    main()
