"""The demo job, a preset of the evaluation grid (`innrsic.evaluation.runner.run_evaluation`)
and its report (`innrsic.evaluation.page.build_report`): each shipped enhancer behind its codec,
swept over the decode-time temperature against the decoded image and tuned controls
(`innrsic.evaluation.demo_enhanced`, under ``OUT/enhancers/``), then every classical codec at
three target rates on real aerial images.

Writes, under the output directory, the evaluation's files for the codec grid (``rows.csv``,
``summary.csv``, ``summary.json``, ``bd.csv``, ``rate_distortion.png``,
``rate_perception.png``, ``crops/``, the bitstreams under ``cache/``), the enhancer section's
``pd-<model>.png`` and crops, and ``index.html``: the enhancer sections, then the codec grid's
report.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from innrsic.codecs.classical import CLASSICAL_CODECS
from innrsic.compute.cluster import cluster_client, cluster_plan
from innrsic.data.splits import ImageRef, ucmerced_split
from innrsic.errors import InnrsicError
from innrsic.evaluation.controls import CONTROLS_FILE
from innrsic.evaluation.demo_enhanced import CONTROL_IMAGES, run_enhancer_section
from innrsic.evaluation.page import build_report
from innrsic.evaluation.runner import EvaluationSettings, run_evaluation
from innrsic.evaluation.store import Row, read_rows
from innrsic.pretrained import installed_models
from innrsic.raster.image import list_images

DEFAULT_RATES = (0.25, 0.5, 1.0)
TITLE = "innrsic demo: codecs and enhancers on aerial images"


@dataclass(frozen=True)
class DemoInputs:
    """The images the demo runs on and a sentence saying where they came from."""

    images: list[Path]
    source: str


@dataclass(frozen=True)
class DemoEnhancers:
    """The enhancer section's controls: tuned on `control_images` images of the UC-M train
    split under `control_root` (None: the data folder when it holds ``ucmerced/``)."""

    control_root: Path | None = None
    control_images: int = CONTROL_IMAGES


def select_demo_images(data: Path, per_class: int, limit: int | None) -> DemoInputs:
    """UC-M test-split images (`per_class` per class) when `data` holds `ucmerced/`;
    otherwise every image in `data`. `limit` caps the count."""
    if (data / "ucmerced").is_dir():
        taken: dict[str, int] = defaultdict(int)
        images = []
        for ref in ucmerced_split(data, "test"):
            image_class = ref.path.parent.name
            if taken[image_class] < per_class:
                taken[image_class] += 1
                images.append(ref.path)
        source = f"UC Merced test split ({per_class} per class) from {data / 'ucmerced'}"
    else:
        images = list_images(data)
        source = f"images under {data}"
    if limit is not None:
        images = images[:limit]
    if not images:
        raise InnrsicError(f"no images found under {data}")
    return DemoInputs(images, source)


def run_demo(
    data: Path,
    out: Path,
    rates: tuple[float, ...] = DEFAULT_RATES,
    per_class: int = 1,
    limit: int | None = None,
    codecs: tuple[str, ...] = tuple(CLASSICAL_CODECS),
    workers: int = 1,
    enhancers: DemoEnhancers | None = DemoEnhancers(),
    weights_dir: Path | None = None,
) -> list[Row]:
    """Run the demo's grids and write its report; returns the codec grid's rows.

    The codec grid (every codec at every target rate) runs as `workers` shards on the worker
    processes of `innrsic.compute.cluster`. With `enhancers`, every shipped enhancer also runs
    behind its own codec on some of the images (`innrsic.evaluation.demo_enhanced`), against
    controls tuned as `enhancers` says. A rate a codec cannot reach for an image is
    a row with status "unreachable: ..."; any other failure has status "failed: ...".
    """
    inputs = select_demo_images(data, per_class, limit)
    # the demo of before issue 31 tuned its controls into OUT; the codec grid has none
    (out / CONTROLS_FILE).unlink(missing_ok=True)
    refs = [ImageRef(path, path.stem) for path in inputs.images]
    specs = tuple(f"{name}:bpp={rate}" for name in codecs for rate in rates)
    settings = EvaluationSettings(codecs=specs, weights_dir=weights_dir, data_label=inputs.source)
    run_grid(refs, out, settings, workers)
    lead = [_codecs_intro(len(refs), inputs.source, codecs, rates)]
    models = installed_models() if enhancers is not None else []
    if enhancers is not None and models:
        root = enhancers.control_root or (data if (data / "ucmerced").is_dir() else None)
        lead = run_enhancer_section(inputs.images, out, models, weights_dir, root,
                                    enhancers.control_images) + lead
    build_report(out, weights_dir=weights_dir, title=TITLE, lead=lead)
    return list(read_rows(out).rows.values())


def run_grid(
    refs: Sequence[ImageRef], out: Path, settings: EvaluationSettings, workers: int
) -> None:
    """`run_evaluation` of `settings` over `refs` (rows only), as one shard per worker of a
    local cluster (`innrsic.compute.cluster`), or in this process for one worker."""
    plan = cluster_plan(workers, None, len(refs))
    with cluster_client(plan) as client:
        if client is None:
            run_evaluation(refs, out, settings, build_report=False)
            return
        count = plan.workers
        futures = [client.submit(run_evaluation, refs, out, settings, shard=(index, count),
                                 progress=False, build_report=False, pure=False)
                   for index in range(count)]
        client.gather(futures)


def _codecs_intro(images: int, source: str, codecs: Sequence[str], rates: Sequence[float]) -> str:
    return (
        "<h2>Classical codecs</h2>"
        f"<p>{images} images ({html.escape(source)}); codecs {', '.join(codecs)}; target rates "
        f"{', '.join(map(str, rates))} bpp, every bitstream decoded and measured by the "
        "evaluation grid (<code>innrsic evaluate</code>) below. A rate a codec cannot reach on "
        "an image is listed under the rows not OK, never averaged in silently.</p>"
    )
