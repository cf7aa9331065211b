"""``python -m innrsic`` runs the command line; under torchrun it is the module to launch::

    torchrun --nproc_per_node=2 -m innrsic train enhancer --config configs/enhancer/quick.yaml

Under torchrun (WORLD_SIZE > 1) a worker that finished leaves with ``os._exit`` after flushing
its logs and streams: DistributedDataParallel keeps the gloo process group and its threads alive
past ``destroy_process_group`` (torch 2.14), and tearing the interpreter down around those threads
aborted a worker now and then (SIGABRT, "terminate called without an active exception") after
every file of the run was written. Checkpoints and logs are closed before `main` returns.
"""

import logging
import os
import sys

from innrsic.cli import main


def _leave(code: int) -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    _leave(main())
