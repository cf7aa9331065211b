"""CompressAI's image codecs import without its point-cloud code, and nothing else is lost."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


@pytest.mark.slow
def test_models_import_without_torch_geometric_and_the_rest_stays_reachable():
    _run(
        "import sys\n"
        "from innrsic.codecs.compressai_import import is_shell, models\n"
        "m = models()\n"
        "assert m.Elic2022Chandelier and m.JointAutoregressiveHierarchicalPriors\n"
        "assert 'torch_geometric' not in sys.modules, 'torch_geometric imported'\n"
        "assert 'compressai.datasets' not in sys.modules\n"
        "import compressai\n"
        "assert is_shell(compressai) and compressai.get_entropy_coder() == 'ans'\n"
        "assert compressai.available_entropy_coders() == ['ans'] and compressai.__version__\n"
        "from compressai.entropy_models import GaussianConditional\n"
        "import torch\n"
        "gc = GaussianConditional(None); gc.update_scale_table(torch.tensor([0.11, 1.0]))\n"
        "from compressai.registry import MODELS, TRANSFORMS\n"
        "assert 'elic2022-chandelier' in MODELS and 'ToTensor' in TRANSFORMS\n"
        "assert compressai.zoo.image_models and compressai.losses.RateDistortionLoss\n"
        "assert compressai.datasets.ImageFolder\n"
    )


@pytest.mark.slow
def test_a_full_compressai_import_first_is_used_as_it_is():
    _run(
        "import compressai\n"
        "from innrsic.codecs.compressai_import import is_shell, models\n"
        "assert models() is compressai.models and not is_shell(compressai)\n"
    )


@pytest.mark.slow
def test_a_layout_the_shells_do_not_fit_falls_back_to_the_ordinary_import():
    _run(
        "import sys\n"
        "from innrsic.codecs import compressai_import as ci\n"
        "for name in [n for n in sys.modules if n.startswith('compressai')]:\n"
        "    del sys.modules[name]\n"
        "real = ci._import_under_shells\n"
        "def broken():\n"
        "    real()\n"
        "    raise ImportError('layout changed')\n"
        "ci._import_under_shells = broken\n"
        "m = ci.models()\n"
        "import compressai\n"
        "assert not ci.is_shell(compressai)\n"
        "assert not ci.is_shell(sys.modules['compressai.registry'])\n"
        "assert m is compressai.models and m.Elic2022Chandelier\n"
    )
