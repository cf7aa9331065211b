"""Acceptance table of issue 15, "an enhancer that beats 'add noise'": does an enhancer improve
on the decoded image by more than trivial controls do, on measures noise cannot fool?

For every image of each ``--pairs`` directory (written by ``innrsic pairs``) the conditions are:

- ``decoded``: the codec's output;
- ``noise``: decoded + white Gaussian noise (`innrsic.metrics.controls.add_gaussian_noise`);
- ``unsharp``: decoded through Pillow's unsharp mask (`unsharp_mask`, radius
  ``--unsharp-radius``);
- ``LABEL@T``: each enhancer at each ``--temperatures`` value; T > 0 once per ``--seeds``
  value (the latent seed), T = 0 once (it has no latent).

The two controls' strengths are tuned on ``--val-pairs`` (pass pairs of the TRAIN split, never
the test images): the strength with the lowest mean LPIPS-squeeze (`tune_controls`, as
``innrsic evaluate`` tunes them). The "best control" of a pairs set is the one of the two with
the lower mean LPIPS on its images (`innrsic.evaluation.paired`, the rule of ``innrsic
evaluate``). One ``--val-pairs`` serves every ``--pairs``; or give one per ``--pairs``, in the
same order. ``innrsic evaluate`` runs the same controls and measures from codec specs; this
script starts from pairs directories and adds the seed spread.

Measures (ground truth vs condition): PSNR, MS-SSIM (none under 161 px), LPIPS-squeeze, NIQE
(no reference), the band-energy ratios ``band_ratio_<a>_<b>`` of `band_metrics` and
``band_err_16_4 = |log2(ratio in 1/16-1/4 cycles/pixel)|`` (0 = the ground truth's energy; the
issue's criterion is that an enhancer brings it closer than the decoded image's), and at T > 0
``seed_diff``, the mean absolute difference in levels between the first two seeds' outputs.

Outputs in ``--out``: ``per_image.csv`` (one row per image, condition and seed), ``summary.csv``
and ``summary.json`` (per pairs set and condition: the mean over images - seeds averaged
first - with its 95% Student-t CI, and the paired differences vs ``decoded`` and vs the best
control, each with its CI; ``better_than_*`` is true where the whole CI of the difference is
on the better side), ``tuning.csv`` (the validation tables), ``plot_data.csv`` and, as
matplotlib is a project dependency, ``pd_lpips.png`` / ``pd_niqe.png`` (perception-distortion
planes: PSNR against LPIPS and against NIQE, each enhancer's temperature sweep as a line,
decoded and the controls as points). Progress goes to stderr.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/enhancer_acceptance.py \\
        --enhancer enhancer-jpeg2000-bpp0.1 --pairs /tmp/acc_pairs/test \\
        --val-pairs /tmp/acc_pairs/val --limit 6 --out /tmp/acc_out
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
from innrsic.data.pairs import read_pairs_manifest
from innrsic.enhancer.settings import ENHANCER_TILE
from innrsic.enhancer.temperature import SWEEP_TEMPERATURES
from innrsic.evaluation.figures import plot_perception_distortion
from innrsic.evaluation.paired import paired_ci, verdict
from innrsic.metrics import MS_SSIM_MIN_SIDE, ms_ssim, psnr
from innrsic.metrics.controls import (
    CONTROL_KINDS,
    NOISE_STRENGTHS,
    UNSHARP_STRENGTHS,
    apply_control,
    tune_controls,
)
from innrsic.metrics.niqe import niqe
from innrsic.metrics.perceptual import WEIGHTS_ENV, lpips_distance
from innrsic.metrics.spectrum import BAND_COLUMNS as BAND_NAMES
from innrsic.metrics.spectrum import band_metrics
from innrsic.metrics.stats import mean_ci
from innrsic.raster.image import read_image

BAND_COLUMNS = list(BAND_NAMES.values())
METRICS = ["psnr", "ms_ssim", "lpips", "niqe", "band_err_16_4", *BAND_COLUMNS, "seed_diff"]
# +1: higher is better, -1: lower is better, 0: no direction (a ratio is judged by its error)
DIRECTION = {"psnr": 1, "ms_ssim": 1, "lpips": -1, "niqe": -1, "band_err_16_4": -1,
             "seed_diff": 0, **dict.fromkeys(BAND_COLUMNS, 0)}
PER_IMAGE_COLUMNS = ["pairs", "image", "condition", "kind", "enhancer", "temperature", "seed",
                     "strength", "psnr", "ms_ssim", "lpips", "niqe", "band_err_16_4",
                     *BAND_COLUMNS, "seed_diff"]


@dataclass(frozen=True)
class Enhancer:
    label: str
    path: Path
    default_temperature: float | None
    engine: Any


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enhancer", action="append", default=[], metavar="[LABEL=]NAME_OR_PATH",
                        help="a shipped model name or a weights file (repeatable)")
    parser.add_argument("--pairs", action="append", required=True, type=Path, metavar="DIR",
                        help="a pairs directory to evaluate on (repeatable)")
    parser.add_argument("--val-pairs", action="append", required=True, type=Path, metavar="DIR",
                        help="pairs (of the TRAIN split) to tune the controls on: one for all "
                             "--pairs, or one per --pairs")
    # whole temperatures as ints, as before: the result rows print 0 and 1
    parser.add_argument("--temperatures", nargs="+", type=float,
                        default=[int(t) if t.is_integer() else t for t in SWEEP_TEMPERATURES])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--limit", type=int, default=None, help="at most N images per pairs set")
    parser.add_argument("--every", type=int, default=1, help="every K-th image (before --limit)")
    parser.add_argument("--val-limit", type=int, default=None, help="at most N validation pairs")
    parser.add_argument("--noise-strengths", nargs="+", type=float, default=list(NOISE_STRENGTHS),
                        help="noise sigmas (8-bit levels) to tune over")
    parser.add_argument("--unsharp-strengths", nargs="+", type=float,
                        default=list(UNSHARP_STRENGTHS), help="unsharp amounts to tune over")
    parser.add_argument("--unsharp-radius", type=float, default=1.0)
    parser.add_argument("--noise-seed", type=int, default=1000,
                        help="seed of the noise control (image i uses seed + i)")
    parser.add_argument("--weights", default=None,
                        help=f"LPIPS backbone file or folder (default ${WEIGHTS_ENV}, else "
                             "../shared/weights)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--tile", type=int, default=ENHANCER_TILE,
                        help="enhancer tile size (0 = whole)")
    parser.add_argument("--out", type=Path, default=common.RESULTS / "enhancer_acceptance")
    args = parser.parse_args(argv)
    if not args.enhancer:
        parser.error("give at least one --enhancer")
    if len(args.val_pairs) not in (1, len(args.pairs)):
        parser.error("give one --val-pairs, or one per --pairs")
    if args.every < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--every and --limit must be >= 1")
    if any(t < 0 for t in args.temperatures) or len(set(args.seeds)) != len(args.seeds):
        parser.error("temperatures must be >= 0 and seeds distinct")
    return args


def load_enhancers(specs: list[str], threads: int | None) -> list[Enhancer]:
    from innrsic.enhancer import load_enhancer
    from innrsic.enhancer.fast import engine_for
    from innrsic.pretrained import resolve_enhancer

    enhancers = []
    for spec in specs:
        is_file = Path(spec).expanduser().is_file()
        label, _, name = spec.partition("=") if "=" in spec and not is_file else ("", "", spec)
        path, default_t = resolve_enhancer(name)
        label = label or (name if not Path(name).expanduser().is_file() else Path(name).stem)
        engine = engine_for(load_enhancer(path).eval(), "float32", threads)
        enhancers.append(Enhancer(label, path, default_t, engine))
    if len({e.label for e in enhancers}) != len(enhancers):
        raise SystemExit("enhancer labels must be distinct (use LABEL=PATH)")
    return enhancers


def load_pairs(directory: Path, every: int = 1, limit: int | None = None
               ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    manifest = read_pairs_manifest(directory)
    entries = manifest.entries[::every][:limit]
    return [(e.name, read_image(directory / e.gt), read_image(directory / e.decoded))
            for e in entries]


def measure(gt: np.ndarray, image: np.ndarray, weights: str | None) -> dict[str, float | None]:
    return {
        "psnr": psnr(gt, image),
        "ms_ssim": ms_ssim(gt, image) if min(gt.shape[:2]) >= MS_SSIM_MIN_SIDE else None,
        "lpips": lpips_distance(gt, image, weights),
        "niqe": niqe(image),
        **band_metrics(gt, image),
    }


def tune(val: list[tuple[str, np.ndarray, np.ndarray]], args: argparse.Namespace,
         weights: str | None) -> dict[str, Any]:
    """Tuned strength and validation table of each control (`tune_controls`)."""
    pairs = [(gt, decoded) for _, gt, decoded in val]

    def metric(a: np.ndarray, b: np.ndarray) -> float:
        return lpips_distance(a, b, weights)

    grids = {"noise": args.noise_strengths, "unsharp": args.unsharp_strengths}
    result = tune_controls(pairs, grids, metric, seed=args.noise_seed,
                           radius=args.unsharp_radius)
    for kind in CONTROL_KINDS:
        log(f"  tuned {kind}: strength {result[kind]['strength']:g} (validation LPIPS "
            f"{result[kind]['val_lpips']:.4f})"
            + (f"; WARNING: the largest {kind} strength tried, extend the grid"
               if result[kind]["at_grid_edge"] else ""))
    log(f"  decoded: validation LPIPS {result['decoded_val_lpips']:.4f}")
    return result


def evaluate_set(name: str, pairs: list[tuple[str, np.ndarray, np.ndarray]],
                 enhancers: list[Enhancer], tuned: dict[str, Any], args: argparse.Namespace,
                 weights: str | None) -> list[dict[str, Any]]:
    from innrsic.enhancer.apply import enhance_array
    from innrsic.enhancer.settings import EnhanceSettings

    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    interactive = sys.stderr.isatty()
    items = tqdm(pairs, desc=name, unit="img", file=sys.stderr) if interactive else pairs
    for index, (image_name, gt, decoded) in enumerate(items):
        if not interactive:
            log(f"  [{index + 1}/{len(pairs)}] {image_name} "
                f"({time.perf_counter() - started:.0f} s)")
        base = {"pairs": name, "image": image_name}
        rows.append({**base, "condition": "decoded", "kind": "decoded",
                     **measure(gt, decoded, weights)})
        for kind in CONTROL_KINDS:
            strength = tuned[kind]["strength"]
            out = apply_control(kind, decoded, strength, seed=args.noise_seed + index,
                                radius=args.unsharp_radius)
            rows.append({**base, "condition": kind, "kind": kind, "strength": strength,
                         **measure(gt, out, weights)})
        for enhancer in enhancers:
            for temperature in args.temperatures:
                condition = f"{enhancer.label}@T={temperature:g}"
                seeds = args.seeds if temperature > 0 else args.seeds[:1]
                outputs = []
                for seed in seeds:
                    out = enhance_array(decoded, enhancer.engine,
                                        EnhanceSettings(temperature, seed, args.tile))
                    outputs.append(out)
                    rows.append({**base, "condition": condition, "kind": "enhancer",
                                 "enhancer": enhancer.label, "temperature": temperature,
                                 "seed": seed if temperature > 0 else None,
                                 **measure(gt, out, weights)})
                if len(outputs) >= 2:
                    diff = float(np.abs(outputs[0].astype(np.int16) - outputs[1]).mean())
                    for row in rows[-len(outputs):]:
                        row["seed_diff"] = diff
    return rows


def per_image_means(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict]]:
    """(pairs, condition) -> image -> metric -> value, seeds averaged."""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[(row["pairs"], row["condition"], row["image"])].append(row)
    table: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for (pairs, condition, image), items in grouped.items():
        values = {}
        for metric in METRICS:
            present = [r[metric] for r in items if r.get(metric) is not None]
            values[metric] = math.fsum(present) / len(present) if present else None
        table[(pairs, condition)][image] = values
    return table


def _column(images: dict[str, dict], metric: str) -> dict[str, float | None]:
    return {image: values[metric] for image, values in images.items()}


def best_controls(table: dict[tuple[str, str], dict[str, dict]]) -> dict[str, str]:
    """Per pairs set, the control with the lowest mean LPIPS over its images."""
    def mean_lpips(pairs: str, kind: str) -> float:
        ci = mean_ci(_column(table[(pairs, kind)], "lpips").values())
        return ci.mean if ci.mean is not None else math.inf

    return {pairs: min(CONTROL_KINDS, key=lambda kind: mean_lpips(pairs, kind))
            for pairs, _ in table}


def summarise(rows: list[dict[str, Any]], tuned: dict[str, dict[str, Any]]
              ) -> list[dict[str, Any]]:
    table = per_image_means(rows)
    bests = best_controls(table)
    for pairs, best in bests.items():
        tuned[pairs]["best_control"] = best
    summary = []
    for (pairs, condition), images in table.items():
        decoded = table[(pairs, "decoded")]
        best = bests[pairs]
        control = table[(pairs, best)]
        for metric in METRICS:
            values = [v[metric] for v in images.values() if v[metric] is not None]
            if not values:
                continue
            ci = mean_ci(values)
            row: dict[str, Any] = {"pairs": pairs, "condition": condition, "metric": metric,
                                   "n": ci.n, "mean": ci.mean, "ci_low": ci.low,
                                   "ci_high": ci.high, "best_control": best}
            for ref_name, ref in (("decoded", decoded), ("best_control", control)):
                if condition == ref_name or (ref_name == "best_control" and condition == best):
                    continue
                dci = paired_ci(_column(images, metric), _column(ref, metric))
                if not dci.n:
                    continue
                row[f"diff_vs_{ref_name}"] = dci.mean
                row[f"diff_vs_{ref_name}_ci_low"] = dci.low
                row[f"diff_vs_{ref_name}_ci_high"] = dci.high
                row[f"better_than_{ref_name}"] = (
                    None if not DIRECTION[metric] or dci.low is None
                    else verdict(dci, DIRECTION[metric]) == "better")
            summary.append(row)
    return summary


SUMMARY_COLUMNS = ["pairs", "condition", "metric", "n", "mean", "ci_low", "ci_high",
                   "diff_vs_decoded", "diff_vs_decoded_ci_low", "diff_vs_decoded_ci_high",
                   "better_than_decoded", "best_control", "diff_vs_best_control",
                   "diff_vs_best_control_ci_low", "diff_vs_best_control_ci_high",
                   "better_than_best_control"]


def plot_points(summary: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict]:
    means = {(r["pairs"], r["condition"], r["metric"]): r["mean"] for r in summary}
    info = {(r["pairs"], r["condition"]): r for r in rows}
    points = []
    for (pairs, condition), row in info.items():
        points.append({
            "pairs": pairs, "condition": condition, "kind": row["kind"],
            "enhancer": row.get("enhancer"), "temperature": row.get("temperature"),
            "psnr": means.get((pairs, condition, "psnr")),
            "lpips": means.get((pairs, condition, "lpips")),
            "niqe": means.get((pairs, condition, "niqe")),
        })
    return points


def write_plots(points: list[dict[str, Any]], out: Path) -> list[str]:
    """``pd_lpips.png`` and ``pd_niqe.png``: one panel per pairs set."""
    markers = {"decoded": "o", "noise": "s", "unsharp": "^"}
    panels: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        point = {"label": p["condition"], "psnr": p["psnr"], "lpips": p["lpips"],
                 "niqe": p["niqe"], "temperature": p["temperature"]}
        if p["kind"] == "enhancer":
            point["line"] = p["enhancer"]
        else:
            point["marker"] = markers[p["kind"]]
        panels.setdefault(p["pairs"], []).append(point)
    written = []
    for metric, label in (("lpips", "LPIPS-squeeze (lower is better)"),
                          ("niqe", "NIQE (lower is better)")):
        name = f"pd_{metric}.png"
        plot_perception_distortion(dict(sorted(panels.items())), [(metric, label)], out / name)
        written.append(name)
    return written


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: common._fmt(row.get(k)) for k in columns})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    weights = args.weights
    if weights is None and not os.environ.get(WEIGHTS_ENV):
        weights = str(common.shared_root() / "weights")
    args.out.mkdir(parents=True, exist_ok=True)
    enhancers = load_enhancers(args.enhancer, args.threads)
    names = [p.name or str(p) for p in args.pairs]
    if len(set(names)) != len(names):
        names = [str(p) for p in args.pairs]

    rows: list[dict[str, Any]] = []
    tuned: dict[str, dict[str, Any]] = {}
    tuning_rows: list[dict[str, Any]] = []
    val_cache: dict[Path, dict[str, Any]] = {}
    for index, (name, directory) in enumerate(zip(names, args.pairs, strict=True)):
        val_dir = args.val_pairs[index if len(args.val_pairs) > 1 else 0]
        if val_dir not in val_cache:
            val = load_pairs(val_dir, limit=args.val_limit)
            log(f"tuning controls on {len(val)} validation pairs of {val_dir}")
            val_cache[val_dir] = tune(val, args, weights)
        tuned[name] = {**val_cache[val_dir], "val_pairs": str(val_dir)}
        for kind in CONTROL_KINDS:
            for row in tuned[name][kind]["table"]:
                tuning_rows.append({"pairs": name, "val_pairs": str(val_dir), "control": kind,
                                    **row, "chosen": row["strength"] ==
                                    tuned[name][kind]["strength"]})
        pairs = load_pairs(directory, args.every, args.limit)
        log(f"{name}: {len(pairs)} images, {len(enhancers)} enhancer(s), temperatures "
            f"{args.temperatures}, seeds {args.seeds}")
        rows += evaluate_set(name, pairs, enhancers, tuned[name], args, weights)

    summary = summarise(rows, tuned)
    points = plot_points(summary, rows)
    write_csv(args.out / "per_image.csv", rows, PER_IMAGE_COLUMNS)
    write_csv(args.out / "summary.csv", summary, SUMMARY_COLUMNS)
    write_csv(args.out / "tuning.csv", tuning_rows,
              ["pairs", "val_pairs", "control", "strength", "mean", "n", "chosen"])
    write_csv(args.out / "plot_data.csv", points,
              ["pairs", "condition", "kind", "enhancer", "temperature", "psnr", "lpips", "niqe"])
    plots = write_plots(points, args.out)
    meta = {
        "command": " ".join([sys.executable, *sys.argv]),
        "enhancers": [{"label": e.label, "path": str(e.path),
                       "default_temperature": e.default_temperature} for e in enhancers],
        "pairs": {n: str(p) for n, p in zip(names, args.pairs, strict=True)},
        "tuning": {n: {k: v for k, v in t.items()} for n, t in tuned.items()},
        "temperatures": args.temperatures, "seeds": args.seeds, "limit": args.limit,
        "every": args.every, "unsharp_radius": args.unsharp_radius,
        "noise_seed": args.noise_seed, "plots": plots,
        "seconds": round(time.perf_counter() - started, 1), "load1": common.load1(),
        "machine": common.machine(),
    }
    (args.out / "summary.json").write_text(
        json.dumps({"meta": meta, "summary": summary}, indent=2, default=str) + "\n")
    log(f"wrote {args.out} in {meta['seconds']} s")
    show = [r for r in summary if r["metric"] in ("psnr", "lpips", "niqe", "band_err_16_4")]
    common.print_table(show, ["pairs", "condition", "metric", "n", "mean", "ci_low", "ci_high",
                              "diff_vs_decoded", "better_than_decoded",
                              "diff_vs_best_control", "better_than_best_control"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
