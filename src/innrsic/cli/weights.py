"""`innrsic convert-checkpoint`: the authors' enhancer and ELIC checkpoints (and CompressAI
state dicts) into innrsic's safetensors formats."""

from __future__ import annotations

import argparse
from pathlib import Path

from innrsic.cli.batch import refuse_existing
from innrsic.cli.options import check_output_suffix, stream_spec, temperature
from innrsic.codecs.architectures import ARCHITECTURES
from innrsic.errors import UsageError, WeightsError

SUFFIX = ".safetensors"

EXAMPLES = """examples:
  innrsic convert-checkpoint 0.0008_G.pth -o enhancer-elic-0.0008.safetensors
  innrsic convert-checkpoint 0.0008_G.pth -o enhancer.safetensors --half
  innrsic convert-checkpoint net_g.pth -o enh.safetensors --codec jpeg2000:bpp=0.2 \
      --default-temperature 0.5
  innrsic convert-checkpoint ELIC_0008.pth.tar --lambda 0.0008 \
      -o ~/.cache/innrsic/models/elic-lambda0.0008.safetensors
  innrsic convert-checkpoint checkpoint_best.pth.tar -o mbt.safetensors --arch mbt2018-mean

What the source is, is read from its tensors: the authors' ELIC checkpoint (.pth.tar, also
xz-compressed; CompressAI 1.1 names) or, with --arch, a CompressAI state dict becomes a
learned-codec weights file with the entropy coder's CDF tables computed exactly and stored
(frozen integers: every machine codes with the same tables); anything else is read as a
BasicSR `*_G.pth` enhancer state dict as released with INN-RSIC (a `module.` prefix and the
original `guassianize` key names are accepted; the configuration is inferred from the
shapes; --codec and --default-temperature are recorded in it, so that `enhance` and
`decompress --enhance` run it at that temperature and warn about streams of other codecs).
Files are read with torch.load(weights_only=True), so no code inside them can run. The output
must be a new .safetensors file (--force replaces one).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the convert-checkpoint command."""
    parser = subparsers.add_parser(
        "convert-checkpoint",
        help="convert the authors' enhancer (*_G.pth) or ELIC checkpoint into innrsic's format",
        epilog=EXAMPLES,
    )
    parser.add_argument("source", type=Path, help="the checkpoint to convert")
    parser.add_argument("-o", "--output", type=Path, required=True, help=".safetensors file")
    parser.add_argument("--half", action="store_true", help="enhancers: store float16 weights")
    parser.add_argument(
        "--arch", choices=sorted(ARCHITECTURES),
        help="learned codecs: the architecture of a CompressAI state dict (ELIC's is read)",
    )
    parser.add_argument(
        "--lambda", dest="lmbda", type=float, metavar="X",
        help="learned codecs: the rate-distortion weight it was trained with (recorded; "
        "lambda=X specs check it)",
    )
    parser.add_argument(
        "--codec", type=_codec_spec, metavar="SPEC",
        help="enhancers: the codec spec it was trained behind, e.g. jpeg2000:bpp=0.2 (recorded)",
    )
    parser.add_argument(
        "--default-temperature", type=temperature, metavar="T",
        help="enhancers: the temperature it is meant to run at (recorded; default: 1 when used)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_output_suffix(args.output, [SUFFIX], "convert-checkpoint", directory=False)
    refuse_existing([(args.source, args.output)], args.force, skip_existing=False)
    if not args.source.is_file():
        raise UsageError(f"{args.source}: no such file")
    if args.arch is not None or _learned_codec(args.source):
        enhancer_only = [name for name, value in (
            ("--half", args.half), ("--codec", args.codec),
            ("--default-temperature", args.default_temperature)) if value not in (None, False)]
        if enhancer_only:
            raise UsageError(f"{', '.join(enhancer_only)}: for enhancers; this is a learned "
                             "codec's checkpoint")
        from innrsic.codecs.learned_checkpoint import convert_checkpoint
        from innrsic.codecs.learned_weights import short_fingerprint

        loaded = convert_checkpoint(args.source, args.output, args.arch, args.lmbda)
        print(
            f"wrote {args.output}: {loaded.arch} {loaded.config}, fingerprint "
            f"{short_fingerprint(loaded.fingerprint)}, CDF tables stored"
        )
        return 0
    if args.lmbda is not None:
        raise UsageError("--lambda is for learned codecs; this looks like an enhancer checkpoint")
    from innrsic.enhancer import convert_original_checkpoint  # imports torch

    config = convert_original_checkpoint(
        args.source, args.output, half=args.half, codec=args.codec,
        default_temperature=args.default_temperature,
    )
    recorded = "".join(
        f", {label} {value}" for label, value in (
            ("codec", args.codec), ("default temperature", args.default_temperature))
        if value is not None
    )
    print(f"wrote {args.output}: {config}{recorded}")
    return 0


def _codec_spec(text: str) -> str:
    """argparse type: `stream_spec`, a bad spec refused."""
    from innrsic.errors import CodecSpecError

    try:
        return stream_spec(text)
    except CodecSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _learned_codec(source: Path) -> bool:
    """Whether `source` holds learned-codec weights innrsic recognises without --arch."""
    from innrsic.codecs.learned_checkpoint import native_state

    try:
        native_state(source)
    except WeightsError:
        return False
    return True
