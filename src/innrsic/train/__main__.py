"""``python -m innrsic.train enhancer --config FILE ...`` = ``innrsic train enhancer ...``.

For torchrun, which launches a module or a script::

    torchrun --nproc_per_node=2 -m innrsic.train enhancer --config configs/enhancer/quick.yaml
"""

import sys

from innrsic.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
