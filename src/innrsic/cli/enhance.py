"""`innrsic enhance`: the INN-RSIC enhancer on decoded images (files or directories)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from innrsic.cli.batch import run_batch
from innrsic.cli.options import (
    IMAGE_OUTPUT_HELP,
    add_cluster_options,
    add_device_option,
    add_existing_options,
    add_image_format_option,
    add_input_output,
    add_sample_options,
    even_natural,
    image_target,
    natural,
    plan_image_outputs,
    positive_int,
    temperature,
)
from innrsic.compute.cluster import worker_cached
from innrsic.compute.threads import torch_threads
from innrsic.errors import ContainerError, ImageReadError, InnrsicError, UsageError
from innrsic.pretrained import AUTO
from innrsic.raster.image import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from innrsic.enhancer.session import EnhancerSession
    from innrsic.enhancer.settings import EnhanceSettings

EXAMPLES = """examples:
  innrsic enhance decoded.png -o enhanced.png --weights enhancer-jpeg2000-bpp0.1
  innrsic enhance decoded.png -o enhanced.png --codec jpeg2000:bpp=0.2   # model chosen (auto)
  innrsic enhance decoded.png -o enhanced.png --weights enhancer.safetensors
  innrsic enhance decoded/ -o enhanced/ --weights enhancer.safetensors --temperature 0.5 --seed 7
  innrsic enhance scene.tif -o scene_enhanced.tif --weights enhancer.safetensors --tile 512
  innrsic enhance ms16.tif -o ms16_rgb.tif --weights enhancer.safetensors --bands 3,2,1 --scale auto

The enhancer samples its latent z ~ N(0, T^2) (--temperature T; 0 is deterministic) from
--seed as a function of pixel position in the scene, so the same seed gives the same image,
whatever the tile size, and `decompress --region --enhance` gives the whole scene's pixels.
Large GeoTIFF scenes are processed tile by tile with blended overlaps in bounded memory and
keep their georeferencing. A 16-bit, float or multiband TIFF is enhanced in 8 bit through
--bands/--scale (as compress maps it) and written back in its sample type: the selected bands
only, in the order given. The bitrate is the codec's: the enhancer adds no bits.
"""


ENHANCER_OPTIONS = ("temperature", "seed", "tile", "overlap", "precision", "threads", "device")


def add_enhancer_options(parser: argparse.ArgumentParser) -> None:
    """The options shared by `enhance` and `decompress --enhance` (left None when not given:
    `enhance_settings` fills in the defaults, `reject_enhancer_options` sees what was given)."""
    from innrsic.enhancer.settings import ENHANCER_OVERLAP, ENHANCER_TILE, MIN_ENHANCER_TILE

    parser.add_argument(
        "--temperature",
        type=temperature,
        default=None,
        help="latent temperature T (default: the model's own, recorded with its weights, else "
        "1; another value than a model's own is warned about)",
    )
    parser.add_argument("--seed", type=natural, default=None, help="latent seed (default: 0)")
    parser.add_argument(
        "--tile", type=natural, default=None,
        help="enhancer tile size: 0 runs the whole image as one tile, else even, "
        f">= {MIN_ENHANCER_TILE} and >= twice --overlap (default: {ENHANCER_TILE})",
    )
    parser.add_argument(
        "--overlap", type=even_natural, default=None,
        help="blended overlap in pixels, even; a tiling that runs the network on more than "
        f"twice the image's pixels is warned about (default: {ENHANCER_OVERLAP})",
    )
    add_engine_options(parser)


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """--precision / --threads / --device: how and where the enhancer's network is computed
    (None: not given)."""
    from innrsic.enhancer.fast import DEFAULT_PRECISION, PRECISIONS

    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help=f"network precision (default {DEFAULT_PRECISION}, the reference's pixels exactly; "
        "bfloat16 needs a CPU with AVX512-BF16/AMX and is refused elsewhere)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="threads for the network (default: torch's, one per core)",
    )
    add_device_option(parser, unset_is_none=True)


def enhance_settings(args: argparse.Namespace, model: str) -> EnhanceSettings:
    """The command's `EnhanceSettings` for `model`, checked (exit 2 on bad values, or cuda
    where there is none) before any model is loaded."""
    from innrsic.enhancer.settings import DEFAULT_DEVICE, EnhanceSettings

    given = {name: getattr(args, name) for name in ENHANCER_OPTIONS}
    given["device"] = given["device"] or DEFAULT_DEVICE
    return EnhanceSettings(**{k: v for k, v in given.items() if v is not None}, model=model)


def reject_enhancer_options(args: argparse.Namespace) -> None:
    """UsageError when enhancer options are given without --enhance (they would be ignored)."""
    given = [f"--{name}" for name in ENHANCER_OPTIONS if getattr(args, name, None) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} only apply with --enhance MODEL; add it or leave "
                         f"{'it' if len(given) == 1 else 'them'} out")


def run_enhancing_batch(
    args: argparse.Namespace,
    jobs: list[tuple[Path, Path]],
    weights: str,
    operation: Callable[[EnhancerSession, Path, Path], str],
    description: str,
    verb: str,
    streams: bool = False,
) -> int:
    """`run_batch` of ``operation(enhancer, source, target)`` with the enhancer `weights` (or,
    with `AUTO`, each file's model: `choose_models`) at the command's settings
    (`enhance_settings`, checked before any model is loaded), loaded once per process
    (`innrsic.enhancer.session`, `worker_cached`). Each model is loaded here first: the settings
    are resolved and their warnings given once for the batch, as is, with `streams` (the
    sources are `.rsic` files) or `--codec`, another codec's stream; workers get the resolved
    settings and warn no more."""
    settings = enhance_settings(args, weights)
    models = choose_models(jobs, weights, streams, getattr(args, "codec", None))
    check_jobs(args, jobs, streams)
    sessions = {name: _prepared(replace(settings, model=name), jobs, models, streams,
                                getattr(args, "codec", None))
                for name in dict.fromkeys(models.values())}
    first = next(iter(sessions))

    def run_one(source: Path, target: Path) -> str:
        given, resolved, checked = sessions[models.get(source, first)]
        session = _session(given, resolved)
        session.codecs_checked.update(checked)
        return operation(session, source, target)

    with torch_threads(settings.threads):
        return run_batch(args, jobs, run_one, description, verb)


def _prepared(
    settings: EnhanceSettings, jobs: list[tuple[Path, Path]], models: dict[Path, str],
    streams: bool, codec: str | None,
) -> tuple[EnhanceSettings, EnhanceSettings, frozenset[str]]:
    """Open the session of `settings` here (its warnings, and those of its streams or of
    `codec` being another codec's, given once): the given settings, the resolved ones and the
    codec specs already warned about, for the workers."""
    from innrsic.enhancer.apply import check_codec

    with torch_threads(settings.threads):
        enhancer = _session(settings, settings)
    if codec is not None:
        check_codec(enhancer.net.codec, codec, settings.label)
    if streams:
        for source, _ in jobs:
            if models.get(source, settings.model) == settings.model:
                with contextlib.suppress(InnrsicError, OSError):  # its own job reports it
                    enhancer.check_stream(source)
    return settings, enhancer.settings, frozenset(enhancer.codecs_checked)


def choose_models(
    jobs: list[tuple[Path, Path]], weights: str, streams: bool, codec: str | None
) -> dict[Path, str]:
    """The model of each source: `weights`, or with `AUTO` the shipped model covering the
    codec and payload rate of each `.rsic` header (`streams`) or of the `codec` spec
    (`innrsic.pretrained.model_for_codec`). A file no model covers is refused (UsageError) before
    any work; an unreadable header is left to the file's own job."""
    if weights != AUTO:
        return {source: weights for source, _ in jobs}
    if not streams:
        if codec is None:
            raise UsageError("--weights auto needs --codec SPEC: the codec (and bpp=) the "
                             "images were decoded from")
        model = _covering_model("--codec", codec, None)  # one choice for the whole batch
        return {source: model for source, _ in jobs}
    chosen, unreadable = {}, None
    for source, _ in jobs:
        try:
            spec, bpp = _stream_rate(source)
        except (ContainerError, OSError) as exc:
            unreadable = unreadable or f"{source}: {exc}"
            continue
        chosen[source] = _covering_model(str(source), spec, bpp)
    if not chosen:
        raise UsageError(f"--enhance auto found no readable .rsic header to choose a model from "
                         f"({unreadable})")
    return chosen


def _stream_rate(path: Path) -> tuple[str, float]:
    """The codec spec and payload bits per pixel of a `.rsic` file, from its header."""
    from innrsic.metrics import bits_per_pixel
    from innrsic.rsic.container import ContainerReader

    with ContainerReader(path, partial=True) as container:
        spec, size = container.codec_spec, container.payload_size
        return spec, bits_per_pixel(size, container.height, container.width)


def _covering_model(where: str, spec: str, bpp: float | None) -> str:
    """The shipped model for `spec` at `bpp` (UsageError, prefixed by `where`, naming what is
    covered otherwise)."""
    from innrsic.codecs import make_codec
    from innrsic.pretrained import covered_text, model_for_codec

    canonical = make_codec(spec).spec
    model = model_for_codec(canonical, bpp)
    if model is None:
        rate = f" at {bpp:.3f} bpp" if bpp is not None else ""
        raise UsageError(f"{where}: no shipped enhancer covers {canonical}{rate}; shipped: "
                         f"{covered_text()}")
    return model.name


def check_jobs(args: argparse.Namespace, jobs: list[tuple[Path, Path]], streams: bool) -> None:
    """Refuse (exit 2, one line, before the model loads) a source that ``--bands``/``--scale``
    do not fit, or an output that cannot hold the samples written back (a scaled scene needs a
    .tif); a file that cannot be read at all is left to its own job to report."""
    from innrsic.enhancer.apply import check_enhance_target, check_stream_target
    from innrsic.rsic.container import ContainerReader

    bands, scale = getattr(args, "bands", None), getattr(args, "scale", None)
    for source, target in jobs:
        try:
            if streams:
                with ContainerReader(source) as container:
                    check_stream_target(container.metadata, target)
            else:
                check_enhance_target(source, target, bands, scale)
        except (ImageReadError, ContainerError, OSError):
            continue


def _session(given: EnhanceSettings, settings: EnhanceSettings) -> EnhancerSession:
    """The enhancer session of `settings` (the `given` ones, or them resolved), opened once per
    process."""
    from innrsic.enhancer.session import open_session

    return worker_cached(("enhancer", given), lambda: open_session(settings))


def codec_spec(text: str) -> str:
    """argparse type: a codec spec, checked and made canonical (``JP2:bpp=0.20`` ->
    ``jpeg2000:bpp=0.2``)."""
    from innrsic.codecs import make_codec
    from innrsic.errors import CodecSpecError

    try:
        return make_codec(text).spec
    except CodecSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the enhance command."""
    parser = subparsers.add_parser(
        "enhance",
        help="restore texture in decoded images with an INN-RSIC enhancer",
        epilog=EXAMPLES,
    )
    add_input_output(parser, "decoded image file or directory", IMAGE_OUTPUT_HELP)
    parser.add_argument(
        "--weights",
        default=AUTO,
        help="a shipped model's name (see `innrsic models`), enhancer weights (.safetensors), or "
        "auto: the shipped model covering --codec (default: auto)",
    )
    parser.add_argument(
        "--codec",
        type=codec_spec,
        default=None,
        help="the codec spec the images were decoded from, e.g. jpeg:bpp=0.4: picks the model "
        "with --weights auto (from the codec and bpp=), else warns when the model was trained "
        "behind another",
    )
    add_image_format_option(parser)
    add_sample_options(
        parser,
        "TIFF bands to enhance, 1-based, in RGB order (one or three), e.g. 3,2,1 of a 4-band "
        "scene; only those bands are written, in that order and the source's sample type (one "
        "band: the mean of the enhanced channels)",
        "map TIFF samples in MIN..MAX (or the data's range: auto) linearly to the 8 bit the "
        "enhancer takes, and the enhanced 8 bit back to that range in the source's sample type "
        "(lossy: 256 levels; needs a .tif output)",
    )
    add_existing_options(parser)
    add_cluster_options(parser)
    add_enhancer_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    jobs = plan_image_outputs(args, IMAGE_SUFFIXES)

    def enhance_one(enhancer: EnhancerSession, source: Path, target: Path) -> str:
        with image_target(target, args.format) as written:
            result = enhancer.enhance_file(source, written, progress=True, bands=args.bands,
                                           scale=args.scale)
        return (
            f"{target}: {result.width}x{result.height}, T={enhancer.temperature}, "
            f"seed {enhancer.settings.seed}"
        )

    return run_enhancing_batch(args, jobs, args.weights, enhance_one, "enhance", "enhanced")
