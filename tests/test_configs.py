"""The recipes in `configs/`: every one parses with the loader `innrsic train` uses, and at most
`MAX_UNNAMED` of them are named by nothing (no test, README, script, benchmark or shipped model
card), so superseded stages are deleted rather than kept around."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from innrsic.train.config import CodecTrainingConfig, EnhancerTrainingConfig, load_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SCHEMAS = {"enhancer": EnhancerTrainingConfig, "codec": CodecTrainingConfig}
MAX_UNNAMED = 8
MAX_GLOB = 6  # a glob names a family of rates (elic_lambda*.yaml), not a whole folder (cpu_*)
_GLOB = re.compile(r"[\w.*/-]*\*[\w.*/-]*\.yaml")


def config_files() -> list[Path]:
    return sorted(CONFIGS.rglob("*.yaml"))


def _naming_texts() -> list[str]:
    """What may name a config: tests, READMEs, docs, scripts, benchmarks, shipped cards."""
    files = [*REPO.glob("tests/**/*.py"), *REPO.glob("scripts/*"), *REPO.glob("benchmarks/*.py"),
             *REPO.glob("*.md"), *REPO.glob("benchmarks/*.md"), *REPO.glob("docs/**/*.md"),
             *REPO.glob("src/innrsic/pretrained/*.md")]
    return [p.read_text(encoding="utf-8", errors="replace") for p in files if p.is_file()]


def is_named(config: Path, texts: list[str]) -> bool:
    """Named by its path under configs/, its file name (when no other config has it), its stem
    in quotes, or a glob over file names that matches at most `MAX_GLOB` configs."""
    rel = config.relative_to(CONFIGS).as_posix()
    names = [c.name for c in config_files()]
    unique = names.count(config.name) == 1
    quoted = (f'"{config.stem}"', f"'{config.stem}'")
    for text in texts:
        if rel in text or (unique and config.name in text) or any(q in text for q in quoted):
            return True
        globs = (pattern.rsplit("/", 1)[-1] for pattern in _GLOB.findall(text))
        if any(fnmatch.fnmatchcase(config.name, pattern)
               and len(fnmatch.filter(names, pattern)) <= MAX_GLOB for pattern in globs):
            return True
    return False


def test_at_most_a_few_configs_are_named_nowhere() -> None:
    texts = _naming_texts()
    unnamed = [c.relative_to(CONFIGS).as_posix() for c in config_files() if not is_named(c, texts)]
    print(f"{len(unnamed)} of {len(config_files())} configs named nowhere: {unnamed}")
    assert len(unnamed) <= MAX_UNNAMED, f"{len(unnamed)} configs named nowhere: {unnamed}"


def test_the_namer_sees_names_and_globs(tmp_path: Path) -> None:
    config = CONFIGS / "enhancer" / "quick.yaml"
    assert is_named(config, ["--config configs/enhancer/quick.yaml"])
    assert is_named(config, ["`configs/enhancer/q*.yaml` are"])
    assert not is_named(config, ["configs/codec/quick.yaml", "quicker.yaml", "elic_*.yaml"])
    assert not is_named(config, ["every `*.yaml`"])


@pytest.mark.parametrize("path", config_files(), ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_every_config_parses(path: Path) -> None:
    schema = SCHEMAS[path.relative_to(CONFIGS).parts[0]]
    config = load_config(schema, path)
    assert config.data.train
