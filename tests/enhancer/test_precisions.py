"""The enhancer's precisions are one closed set (`innrsic.enhancer.fast.PRECISIONS`, from the
`Precision` literal) with one default, read by the settings, the engine and the CLI."""

from __future__ import annotations

import argparse
import inspect
from typing import get_args

from innrsic.cli import evaluate
from innrsic.cli.enhance import add_engine_options
from innrsic.enhancer.apply import enhance_image
from innrsic.enhancer.fast import DEFAULT_PRECISION, PRECISIONS, FastEnhancer, Precision
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.evaluation.runner import EvaluationSettings


def _precision_action(parser: argparse.ArgumentParser) -> argparse.Action:
    (action,) = [a for a in parser._actions if a.dest == "precision"]
    return action


def test_one_set_one_default() -> None:
    assert PRECISIONS == get_args(Precision) == ("float32", "bfloat16")
    assert DEFAULT_PRECISION == "float32"
    assert EnhanceSettings().precision == DEFAULT_PRECISION
    assert inspect.signature(FastEnhancer).parameters["precision"].default == DEFAULT_PRECISION
    assert inspect.signature(enhance_image).parameters["precision"].default == DEFAULT_PRECISION
    assert EvaluationSettings.__dataclass_fields__["precision"].default == DEFAULT_PRECISION


def test_cli_choices_are_the_set() -> None:
    parser = argparse.ArgumentParser()
    add_engine_options(parser)
    assert tuple(_precision_action(parser).choices) == PRECISIONS
    assert _precision_action(parser).help.startswith("network precision (default float32, ")
    subparsers = argparse.ArgumentParser().add_subparsers()
    evaluate.register(subparsers)
    action = _precision_action(subparsers.choices["evaluate"])
    assert tuple(action.choices) == PRECISIONS
    assert action.default == DEFAULT_PRECISION
    assert action.help == "enhancer network precision (default float32; bfloat16 needs " \
        "AVX512-BF16/AMX)"
