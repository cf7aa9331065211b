"""What every command's parser shares: repeated options, defaults in `--help`, value types,
and the checks on input and output paths that run before any work.

Options are parsed by `Parser`, which every subcommand's parser is (argparse makes subparsers
of the parent's class): an option that takes one value refuses a repeat, and an option that
takes a list (``nargs="+"``) accumulates the values of each repeat (`StoreOnce`).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from innrsic.cli.batch import plan_jobs, refuse_existing
from innrsic.errors import UsageError

_GIVEN = "_options_given"  # dests set on the command line so far, on the namespace while parsing


class StoreOnce(argparse._StoreAction):
    """argparse's "store", except that a repeat is refused (one value) or extends the values
    given before (``nargs="+"``/``"*"``); the first use replaces the default."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given = vars(namespace).setdefault(_GIVEN, set())
        if self.dest in given:
            if not isinstance(values, list):
                before = getattr(namespace, self.dest)
                raise argparse.ArgumentError(
                    self, f"given twice ({before} and {values}); it takes one value"
                )
            values = [*getattr(namespace, self.dest), *values]
        given.add(self.dest)
        setattr(namespace, self.dest, values)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs as written; each option's default appended unless its help names it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        flag = action.nargs == 0  # store_true and the like: the default is implied
        if flag or not action.option_strings or "default" in text or default is argparse.SUPPRESS:
            return text
        if isinstance(default, list | tuple):
            default = " ".join(map(str, default)) if default else None
        if default is None:
            return text
        return f"{text} (default: {str(default).replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser with `StoreOnce` as its store action, `HelpFormatter`, and errors
    on one line (no usage block)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.register("action", None, StoreOnce)
        self.register("action", "store", StoreOnce)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """argparse's, except that a command's own parser (one without subcommands) checks its
        words first (`_checked_words`) and any parser refuses words it does not know, so the
        innermost command's parser names them and its help."""
        if not any(isinstance(a, argparse._SubParsersAction) for a in self._actions):
            args = self._checked_words(sys.argv[1:] if args is None else list(args))
        parsed, rest = super().parse_known_args(args, namespace)
        vars(parsed).pop(_GIVEN, None)
        if rest:
            self.error(f"unrecognized arguments: {' '.join(rest)}")
        return parsed, rest

    def _checked_words(self, words: list[str]) -> list[str]:
        """`words`, with an unknown option refused by name (argparse would first report a
        required option as missing) and a one-value option's value that looks like an option
        (``--region -5,0,10,10``) joined to it (``--region=-5,0,10,10``), for its type to
        check."""
        checked: list[str] = []
        rest = iter(words)
        for word in rest:
            if word == "--":
                return [*checked, word, *rest]
            found = self._parse_optional(word)
            if found is not None and found[0] is None:
                self._unknown_option(word)
            checked.append(word)
            action = None if found is None else found[0]
            if action is None or action.nargs is not None or "=" in word:
                continue
            value = next(rest, None)
            if value is not None and value.startswith("-") and self._names_option(value):
                checked.append(value)  # a missing value: argparse says so
            elif value is not None and value.startswith("-"):
                checked[-1] = f"{word}={value}"
            elif value is not None:
                checked.append(value)
        return checked

    def _names_option(self, word: str) -> bool:
        """Whether `word` is one of this parser's options (abbreviations too)."""
        found = self._parse_optional(word)
        return found is not None and found[0] is not None

    def _unknown_option(self, word: str) -> NoReturn:
        """The error for an option this parser does not have, naming the closest it has."""
        name = word.split("=", 1)[0]
        close = difflib.get_close_matches(name, list(self._option_string_actions), 1, 0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        self.error(f"unrecognized option {name}{hint}")


def progress_wanted(args: argparse.Namespace) -> bool:
    """A progress bar unless --no-progress, and on a terminal only."""
    return not args.no_progress and sys.stderr.isatty()


def temperature(text: str) -> float:
    """argparse type: a temperature as a number. Its range has one rule,
    `innrsic.pretrained.check_temperature`, applied by the settings it goes into."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a temperature (a number)") from None


def stream_spec(text: str) -> str:
    """A codec spec as the streams of its codec carry it (``JP2:bpp=0.20`` ->
    ``jpeg2000:bpp=0.2``); a learned codec's whose weights are not here, as parsed. A bad
    spec raises CodecSpecError."""
    from innrsic.codecs import make_codec
    from innrsic.codecs.spec import CodecSpec
    from innrsic.errors import WeightsError

    try:
        return make_codec(text).spec
    except WeightsError:
        return str(CodecSpec.parse(text))


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def natural(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def even_natural(text: str) -> int:
    """argparse type: an even integer >= 0."""
    value = _int_at_least(text, 0)
    if value % 2:
        raise argparse.ArgumentTypeError(f"{value} is odd; it must be even")
    return value


def workers_count(text: str) -> int | str:
    """argparse type: ``auto`` or an integer >= 1."""
    from innrsic.compute.cluster import AUTO

    return text if text == AUTO else positive_int(text)


def band_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated band numbers, e.g. ``3,2,1``."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of band numbers") from None


def sample_range(text: str) -> tuple[float, float] | str:
    """argparse type: ``MIN,MAX`` or ``auto``."""
    if text == "auto":
        return text
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not MIN,MAX or auto") from None
    return low, high


def add_sample_options(parser: argparse.ArgumentParser, bands_help: str, scale_help: str) -> None:
    """--bands / --scale: how TIFF samples map to 8-bit RGB (`innrsic.raster.geotiff`), with
    the command's own words on what it does with them."""
    parser.add_argument("--bands", type=band_list, metavar="B[,G,R]", help=bands_help)
    parser.add_argument("--scale", type=sample_range, metavar="MIN,MAX|auto", help=scale_help)


def add_cluster_options(
    parser: argparse.ArgumentParser, default: str = "auto"
) -> argparse._MutuallyExclusiveGroup:
    """--workers / --scheduler: where a batch runs (`innrsic.compute.cluster`); the group, for
    options that exclude them."""
    from innrsic.compute.cluster import MIN_CLUSTER_JOBS

    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=workers_count,
        default=default,
        metavar="N|auto",
        help=f"local dask worker processes, each with cores/N threads (1: this process; "
        f"auto: one per core and 2 GiB of free memory, this process for batches under "
        f"{MIN_CLUSTER_JOBS} files; compress of one scene counts its tiles; default: "
        f"{default})",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the batch on an existing dask.distributed cluster, e.g. "
        "tcp://head:8786 (every worker must see the input and output paths)",
    )
    return where


def add_device_option(parser: argparse.ArgumentParser, unset_is_none: bool = False) -> None:
    """--device: where the enhancer runs (`innrsic.enhancer.settings.resolve_device`, which
    refuses cuda where there is none: exit 2 before any work). Its default is `DEFAULT_DEVICE`,
    or with `unset_is_none` None, for a command that checks what was given (and fills in
    `DEFAULT_DEVICE` itself)."""
    from innrsic.enhancer.settings import DEFAULT_DEVICE, DEVICES

    parser.add_argument(
        "--device",
        choices=DEVICES,
        default=None if unset_is_none else DEFAULT_DEVICE,
        help="where the enhancer's network runs: auto (a CUDA GPU where torch sees one, else "
        "the CPU), cpu, or cuda (refused where there is none); on the CPU float32 gives the "
        "reference's pixels exactly, a GPU's float32 differs from them in the last bits "
        f"(default: {DEFAULT_DEVICE})",
    )


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} is below {low}")
    return value


def plan_outputs(
    source: Path,
    output: str,
    input_suffixes: Sequence[str],
    output_suffixes: Sequence[str],
    directory_suffix: str,
) -> list[tuple[Path, Path]]:
    """The (input, output) pairs of a command, or UsageError before any work.

    The input must exist. A directory input needs a directory output (not an existing file
    or a name with a file suffix) and at least one file with `input_suffixes` (recursively);
    each maps to `directory_suffix` under it. A file input goes into `output` when that is a
    directory (existing, or written with a trailing slash), else to `output`, whose suffix
    must be one of `output_suffixes` (`check_output_suffix`).
    """
    target = Path(output)
    if not source.exists():
        raise UsageError(f"{source}: no such file or directory")
    if source.is_dir():
        suffix = target.suffix.lower()
        if (target.exists() and not target.is_dir()) or suffix in _file_suffixes(output_suffixes):
            raise UsageError(
                f"-o {output}: the input {source} is a directory, so the output must be a "
                "directory too (a name without a file suffix)"
            )
        jobs = plan_jobs(source, target, input_suffixes, directory_suffix)
        if not jobs:
            raise UsageError(
                f"{source}: no input files found (looked for {', '.join(input_suffixes)} "
                "files in it and its subfolders)"
            )
        return jobs
    if target.is_dir() or output.endswith(("/", os.sep)):
        return [(source, target / source.with_suffix(directory_suffix).name)]
    check_output_suffix(output, output_suffixes)
    return [(source, target)]


def check_output_suffix(
    output: str | Path, suffixes: Sequence[str], writer: str = "", directory: bool = True
) -> None:
    """UsageError unless the file name `output` ends in one of `suffixes` (any case);
    `writer` says what writes them (default: this command), `directory` whether a directory
    would do too."""
    if Path(output).suffix.lower() not in suffixes:
        raise UsageError(
            f"-o {output}: {writer or 'this command'} writes {', '.join(suffixes)} files, so "
            f"the output name must end in {'one of them' if len(suffixes) > 1 else suffixes[0]}"
            + (" (or be a directory)" if directory else "")
        )


def _file_suffixes(output_suffixes: Sequence[str]) -> set[str]:
    from innrsic.raster.image import IMAGE_SUFFIXES
    from innrsic.rsic.container import SUFFIX

    return {*output_suffixes, *IMAGE_SUFFIXES, SUFFIX}


IMAGE_OUTPUT_HELP = "image file (.png, .tif, .jpg) or directory"


def add_input_output(parser: argparse.ArgumentParser, input_help: str, output_help: str) -> None:
    """The input path (a file or a directory of them) and ``-o``, where the outputs go."""
    parser.add_argument("input", type=Path, help=input_help)
    parser.add_argument("-o", "--output", required=True, help=output_help)


def add_existing_options(parser: argparse.ArgumentParser, skip_help: str = "") -> None:
    """--force / --skip-existing: what a batch does with outputs that already exist."""
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help="replace existing output files")
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing outputs alone and do the rest (finishes an interrupted batch)"
        + skip_help,
    )


def add_data_root_option(parser: argparse.ArgumentParser) -> None:
    """--data-root: the shared data folder split names are found in (`innrsic.data.image_sets`)."""
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="shared data folder for split names (default: $INNRSIC_DATA_ROOT)",
    )


IMAGE_FORMATS = {
    "png": (".png",),
    "tif": (".tif", ".tiff"),
    "jpg": (".jpg", ".jpeg"),
    "cog": (".tif", ".tiff"),
}  # --format -> the output suffixes it writes, the first in directory mode
DEFAULT_IMAGE_FORMAT = "png"


def add_image_format_option(parser: argparse.ArgumentParser) -> None:
    """``--format``: the image format of the outputs; a file output's suffix must agree."""
    from innrsic.raster.geotiff import OUTPUT_PROFILE

    parser.add_argument(
        "--format",
        default=None,
        choices=list(IMAGE_FORMATS),
        help=f"output image format (default: {DEFAULT_IMAGE_FORMAT} in directory mode, else "
        "the -o FILE's suffix; a -o FILE whose suffix contradicts it is refused); cog: "
        f"Cloud-Optimized GeoTIFF (.tif: {OUTPUT_PROFILE.compress.upper()} lossless, "
        f"{OUTPUT_PROFILE.block} px blocks, overviews, "
        "georeferencing and nodata kept)",
    )


def plan_image_outputs(
    args: argparse.Namespace, input_suffixes: Sequence[str]
) -> list[tuple[Path, Path]]:
    """`plan_outputs` for a command writing images in ``args.format`` (given, or
    `DEFAULT_IMAGE_FORMAT` in directory mode): a file output must have one of that format's
    suffixes, or with no --format any image suffix; existing outputs need --force or
    --skip-existing (`refuse_existing`)."""
    from innrsic.raster.image import IMAGE_SUFFIXES

    image_format = args.format or DEFAULT_IMAGE_FORMAT
    suffixes = IMAGE_FORMATS[args.format] if args.format else IMAGE_SUFFIXES
    directory = args.output.endswith(("/", os.sep)) or Path(args.output).is_dir()
    if args.format and not (args.input.is_dir() or directory) and Path(args.output).suffix:
        check_output_suffix(args.output, suffixes, f"--format {args.format}")
    jobs = plan_outputs(
        args.input, args.output, input_suffixes, suffixes, IMAGE_FORMATS[image_format][0]
    )
    refuse_existing(jobs, args.force, args.skip_existing)
    return jobs


@contextlib.contextmanager
def image_target(target: Path, image_format: str | None) -> Iterator[Path]:
    """The path a writer writes `target` through: `target` itself, or for ``cog`` a scratch
    GeoTIFF that becomes the COG at `target` when the block succeeds (`innrsic.raster.cog`)."""
    if image_format != "cog":
        yield target
        return
    from innrsic.raster.cog import cog_output

    with cog_output(target) as plain:
        yield plain
