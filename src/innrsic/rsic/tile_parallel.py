"""Tile-parallel compression of one large scene on a dask.distributed cluster.

`cluster_encoder(client, spec)` is a `innrsic.rsic.coding.BatchEncoder`: this process reads the
scene tile by tile (so workers need no access to its file) and sends each batch of tiles to the
cluster, where a worker codes it with its own codec (made from `spec` once per worker,
`innrsic.compute.cluster.worker_cached`). Results come back in tile order, so
`innrsic.rsic.coding.compress_file` writes the container exactly as a serial run would, byte for
byte. At most `in_flight` batches are out at once (default: two per worker thread), which bounds
this process's memory by a few tiles, whatever the scene's size. A worker that dies has its
batches rerun elsewhere by the scheduler; a batch that fails raises its error here, and the
remaining batches are cancelled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from innrsic.codecs import Codec, make_codec
from innrsic.compute.cluster import worker_cached
from innrsic.rsic.coding import BatchEncoder, EncodedBatch, TileBatch, encode_tile_batch

if TYPE_CHECKING:
    from distributed import Client, Future


def cluster_encoder(client: Client, spec: str, in_flight: int | None = None) -> BatchEncoder:
    """A `BatchEncoder` that codes batches on `client`'s workers with the codec of `spec`."""
    window = in_flight or 2 * max(1, sum(client.nthreads().values()))

    def encode(
        batches: Iterator[TileBatch], records: bool, checksum: bool
    ) -> Iterator[EncodedBatch]:
        pending: deque[Future] = deque()
        try:
            for tiles in batches:
                pending.append(
                    client.submit(_encode_on_worker, spec, tiles, records, checksum, pure=False)
                )
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            if pending:
                client.cancel(list(pending))

    return encode


def _encode_on_worker(
    spec: str, tiles: TileBatch, records: bool, checksum: bool
) -> EncodedBatch:
    """One batch on a worker, with the worker's codec for `spec`."""
    codec: Codec = worker_cached(("codec", spec), lambda: make_codec(spec))
    return encode_tile_batch(codec, tiles, records, checksum)
