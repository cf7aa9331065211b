"""The shipping rule and card tables, on acceptance summaries built by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from innrsic.enhancer import load_enhancer
from innrsic.errors import InnrsicError
from innrsic.pretrained import installed_models
from innrsic.pretrained.card import (
    acceptance_table,
    choose_temperature,
    read_acceptance,
    refusals,
)

SETS = ("UC-M test", "DOTA test")


def _row(pairs: str, condition: str, metric: str, mean: float,
         vs_decoded: tuple[float, float, float] | None = None,
         vs_control: tuple[float, float, float] | None = None) -> dict:
    row = {"pairs": pairs, "condition": condition, "metric": metric, "n": 30, "mean": mean}
    for name, triple in (("decoded", vs_decoded), ("best_control", vs_control)):
        if triple is not None:
            row.update(dict(zip((f"diff_vs_{name}", f"diff_vs_{name}_ci_low",
                                 f"diff_vs_{name}_ci_high"), triple, strict=True)))
    return row


def _summary(path: Path, psnr_gain: dict[float, tuple[float, float, float]],
             lpips_vs_control: dict[float, tuple[float, float, float]],
             old_psnr_t0: float = 24.0) -> Path:
    rows = []
    for pairs in SETS:
        rows += [_row(pairs, "decoded", "psnr", 24.0), _row(pairs, "decoded", "lpips", 0.45),
                 _row(pairs, "noise", "psnr", 23.6, (-0.4, -0.5, -0.3)),
                 _row(pairs, "noise", "lpips", 0.36, (-0.09, -0.1, -0.08))]
        for t, gain in psnr_gain.items():
            rows.append(_row(pairs, f"new@T={t:g}", "psnr", 24.0 + gain[0], gain))
            rows.append(_row(pairs, f"new@T={t:g}", "lpips", 0.36 + lpips_vs_control[t][0],
                             None, lpips_vs_control[t]))
        rows += [_row(pairs, "old@T=0", "psnr", old_psnr_t0, (old_psnr_t0 - 24, 0, 0)),
                 _row(pairs, "old@T=0", "lpips", 0.40, None, (0.04, 0.03, 0.05))]
    meta = {"pairs": {p: f"/pairs/{i}" for i, p in enumerate(SETS)}, "command": "acc ...",
            "tuning": {p: {"noise": {"strength": 4.0}, "unsharp": {"strength": 2.0}}
                       for p in SETS},
            "enhancers": [{"label": "new", "default_temperature": None},
                          {"label": "old", "default_temperature": 0.0}]}
    path.write_text(json.dumps({"meta": meta, "summary": rows}))
    return path


GOOD_PSNR = {0.0: (0.3, 0.2, 0.4), 0.5: (0.1, -0.05, 0.25), 1.0: (-0.2, -0.4, 0.0)}
GOOD_LPIPS = {0.0: (0.01, -0.01, 0.03), 0.5: (-0.06, -0.08, -0.04), 1.0: (-0.08, -0.1, -0.06)}


def test_a_model_that_restores_and_beats_the_control_ships(tmp_path: Path) -> None:
    acceptance = read_acceptance(_summary(tmp_path / "s.json", GOOD_PSNR, GOOD_LPIPS))
    assert acceptance.temperatures("new") == [0.0, 0.5, 1.0]
    assert choose_temperature(acceptance, "new") == 0.5  # the largest with mean dPSNR >= 0
    assert refusals(acceptance, "new", 0.5, replaces="old") == []
    table = acceptance_table(acceptance, "UC-M test", {"new": "this model"})
    assert "| decoded + noise (4, tuned) |" in table
    assert "| this model T=0.5 | 24.10 | 0.300 |" in table
    assert "-0.060 [-0.080, -0.040]" in table


def test_each_part_of_the_rule_refuses(tmp_path: Path) -> None:
    no_restore = {**GOOD_PSNR, 0.0: (0.1, -0.05, 0.25)}
    acceptance = read_acceptance(_summary(tmp_path / "a.json", no_restore, GOOD_LPIPS))
    assert any("T=0 PSNR" in r for r in refusals(acceptance, "new", 0.5))
    like_noise = {**GOOD_LPIPS, 0.5: (-0.01, -0.03, 0.01)}
    acceptance = read_acceptance(_summary(tmp_path / "b.json", GOOD_PSNR, like_noise))
    reasons = refusals(acceptance, "new", 0.5)
    assert len(reasons) == 2 and all("best control" in r for r in reasons)  # both sets
    acceptance = read_acceptance(_summary(tmp_path / "c.json", GOOD_PSNR, GOOD_LPIPS, 24.5))
    assert any("worse than old" in r for r in refusals(acceptance, "new", 0.5, "old"))


def test_no_temperature_keeps_psnr_gives_zero_and_unknown_labels_are_named(tmp_path) -> None:
    all_below = {t: (-0.1, -0.2, 0.0) for t in GOOD_PSNR}
    acceptance = read_acceptance(_summary(tmp_path / "s.json", all_below, GOOD_LPIPS))
    assert choose_temperature(acceptance, "new") == 0.0
    with pytest.raises(InnrsicError, match="no enhancer labelled 'other'"):
        acceptance.temperatures("other")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InnrsicError, match="not an acceptance summary"):
        read_acceptance(bad)


def _uc_m_psnr_gains(card: str) -> dict[float, float]:
    """Mean PSNR change vs decoded on UC-M test per temperature, as the card's default-temperature
    section states it (full-set numbers), else as its ucmerced-test table does."""
    section = card.split("## Default temperature", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"T=([0-9.]+) ([+-][0-9.]+) dB", section)
    if not found:
        # the first UC-M table (a heading "### ucmerced-test" or "### <pairs dir>/ucmerced-test")
        table = re.split(r"### \S*ucmerced-test\n", card, maxsplit=1)[1].split("\n### ", 1)[0]
        found = re.findall(r"\| this model T=([0-9.]+) \|(?:[^|]*\|){5} ([+-][0-9.]+) \[", table)
    return {float(t): float(gain) for t, gain in found}


@pytest.mark.parametrize("model", installed_models(), ids=lambda m: m.name)
def test_each_shipped_default_is_what_its_cards_rule_gives(model) -> None:
    """Issue 32 item 17: the default temperature of the record, the weights file and the card
    agree, and it is the rule's answer on the numbers the card states (the 0.1 and 0.2 bpp
    cards' full-set numbers put T=1 below decoded, so their default is 0.5)."""
    card = model.card.read_text(encoding="utf-8")
    default = model.default_temperature
    assert load_enhancer(model.weights).default_temperature == default
    assert f"Default temperature **{default:g}** (rule below)" in card
    assert f"## Default temperature\n\n{default:g}: the largest temperature" in card
    gains = _uc_m_psnr_gains(card)
    assert len(gains) >= 2
    assert default == max(t for t, gain in gains.items() if gain >= 0)
