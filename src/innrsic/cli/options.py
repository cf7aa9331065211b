"""What every command's parser shares: repeated options, defaults in `--help`, value types,
and the checks on input and output paths that run before any work.

Options are parsed by `Parser`, which every subcommand's parser is (argparse makes subparsers
of the parent's class): an option that takes one value refuses a repeat, and an option that
takes a list (``nargs="+"``) accumulates the values of each repeat (`StoreOnce`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from innrsic.cli.batch import plan_jobs
from innrsic.errors import ConfigError, UsageError

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
        parsed, rest = super().parse_known_args(args, namespace)
        vars(parsed).pop(_GIVEN, None)
        return parsed, rest


def progress_wanted(args: argparse.Namespace) -> bool:
    """A progress bar unless --no-progress, and on a terminal only."""
    return not args.no_progress and sys.stderr.isatty()


def temperature(text: str) -> float:
    """argparse type: a finite temperature >= 0."""
    from innrsic.pretrained import check_temperature

    try:
        return check_temperature(float(text))
    except (ValueError, ConfigError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a temperature (a finite number >= 0)"
        ) from None


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
    or a name with a file suffix); its files with `input_suffixes` map to `directory_suffix`
    under it. A file input goes into `output` when that is a directory (existing, or written
    with a trailing slash), else to `output`, whose suffix must be one of `output_suffixes`.
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
        return plan_jobs(source, target, input_suffixes, directory_suffix)
    if target.is_dir() or output.endswith(("/", os.sep)):
        return [(source, target / source.with_suffix(directory_suffix).name)]
    if target.suffix.lower() not in output_suffixes:
        wanted = ", ".join(output_suffixes)
        raise UsageError(
            f"-o {output}: this command writes {wanted} files, so the output name must end in "
            f"one of them (or be a directory)"
        )
    return [(source, target)]


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


IMAGE_FORMATS = {"png": ".png", "tif": ".tif", "jpg": ".jpg", "cog": ".tif"}
TIFF_SUFFIXES = (".tif", ".tiff")


def add_image_format_option(parser: argparse.ArgumentParser) -> None:
    """``--format``: the image format of outputs in directory mode; ``cog`` (a Cloud-Optimized
    GeoTIFF) applies to a single ``-o x.tif`` too."""
    parser.add_argument(
        "--format",
        default="png",
        choices=list(IMAGE_FORMATS),
        help="output image format in directory mode; cog: Cloud-Optimized GeoTIFF (.tif: "
        "DEFLATE lossless, 512 px blocks, overviews, georeferencing and nodata kept), also "
        "for a single -o FILE.tif",
    )


def plan_image_outputs(
    args: argparse.Namespace, input_suffixes: Sequence[str]
) -> list[tuple[Path, Path]]:
    """`plan_outputs` for a command writing images in ``args.format`` (module doc)."""
    from innrsic.raster.image import IMAGE_SUFFIXES

    suffixes = TIFF_SUFFIXES if args.format == "cog" else IMAGE_SUFFIXES
    return plan_outputs(
        args.input, args.output, input_suffixes, suffixes, IMAGE_FORMATS[args.format]
    )


@contextlib.contextmanager
def image_target(target: Path, image_format: str) -> Iterator[Path]:
    """The path a writer writes `target` through: `target` itself, or for ``cog`` a scratch
    GeoTIFF that becomes the COG at `target` when the block succeeds (`innrsic.raster.cog`)."""
    if image_format != "cog":
        yield target
        return
    from innrsic.raster.cog import cog_output

    with cog_output(target) as plain:
        yield plain
