"""The temperatures a grid of enhancers runs at.

Each model's own temperature is recorded with its weights (`model_temperature`). A grid given
no temperatures runs every model at its own; temperatures given that are not a model's own are
warned about, once per model and value.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from innrsic.enhancer.settings import model_temperature
from innrsic.enhancer.weights_file import load_enhancer
from innrsic.pretrained import resolve_enhancer

# The standard temperature lists (one home; evaluation, benchmarks and the demo import them).
# The two ends: the deterministic mean (T=0) and the temperature the models are trained at (T=1);
# an evaluation's default and the report's crops.
GRID_TEMPERATURES = (0.0, 1.0)
# the sweep between them (the acceptance benchmark and the demo's enhancer section)
SWEEP_TEMPERATURES = (0.0, 0.25, 0.5, 0.75, 1.0)
# the demo's showcase crops
SHOWCASE_TEMPERATURES = (0.0, 0.5, 1.0)


def grid_enhancers(
    names: Sequence[str], given: Sequence[float] | None
) -> tuple[tuple[Path, ...], tuple[float, ...]]:
    """The weights files of the enhancers `names` (shipped model names or weights files) and
    the temperatures to run them at: `given`, else the models' own, each once, ascending."""
    if not names:
        return (), tuple(given or ())
    paths = tuple(resolve_enhancer(name)[0] for name in names)
    nets = {name: load_enhancer(path) for name, path in zip(names, paths, strict=True)}
    if given is None:
        return paths, tuple(sorted({model_temperature(net) for net in nets.values()}))
    for name, net in nets.items():
        for value in dict.fromkeys(given):
            model_temperature(net, value, name)
    return paths, tuple(given)
