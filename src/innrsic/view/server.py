"""The HTTP side of `innrsic view`, on aiohttp.

Why aiohttp: a mature asyncio HTTP server and client in one package (no separate ASGI server
to pin and configure, as Starlette would need uvicorn), with safe static-file serving and a
test client; it was already in the environment. Decoding and enhancing are blocking work, so
they run on a pool of `WORKERS` threads (requests beyond it queue in the pool, so memory stays
bounded); the event loop only parses requests and sends bytes.

Routes: ``/`` (the page), ``/static/...`` (its script, styles and the vendored Leaflet),
``/api/files`` (the served scenes: name, size, codec, bpp, bytes, map levels),
``/api/models`` (``auto`` and the shipped enhancers), ``/api/region?file=&x=&y=&w=&h=
[&enhance=&temperature=&seed=]`` (a PNG equal to ``innrsic decompress --region``'s) and
``/api/tile/{file}/{z}/{x}/{y}.png`` (map tiles, same query for the enhanced layer). Refused
requests get a 4xx JSON ``{"error": ...}`` before any pixel work, a damaged file a 500 JSON;
the server serves on.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from innrsic.errors import InnrsicError
from innrsic.pretrained import AUTO
from innrsic.view.scenes import RequestError, Scenes

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
WORKERS = 2
SCENES = web.AppKey("scenes", Scenes)
POOL = web.AppKey("pool", ThreadPoolExecutor)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals as 4xx JSON; a failure of the library (a damaged file) as 500 JSON."""
    try:
        return await handler(request)
    except RequestError as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
    except (InnrsicError, OSError) as exc:
        log.warning("%s: %s", request.path_qs, exc)
        return web.json_response({"error": str(exc)}, status=500)


async def _in_pool(request: web.Request, work: Callable[[], bytes]) -> web.Response:
    """`work` (blocking) on the app's threads, answered as a PNG."""
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(request.app[POOL], work)
    return web.Response(body=body, content_type="image/png",
                        headers={"Cache-Control": "no-cache"})


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def files(request: web.Request) -> web.Response:
    return web.json_response(request.app[SCENES].listing())


async def models(request: web.Request) -> web.Response:
    return web.json_response([AUTO, *request.app[SCENES].models])


async def region(request: web.Request) -> web.Response:
    """``/api/region``: the PNG of ``innrsic decompress --region`` (module doc)."""
    scenes = request.app[SCENES]
    scene = scenes.scene(request.query.get("file", ""))
    window = scenes.region(scene, request.query)
    settings = scenes.enhancement(scene, request.query)
    return await _in_pool(request, functools.partial(scenes.region_png, scene, window, settings))


async def tile(request: web.Request) -> web.Response:
    """``/api/tile/{file}/{z}/{x}/{y}.png``: one map tile (`Scenes.tile_png`)."""
    scenes = request.app[SCENES]
    scene = scenes.scene(request.match_info["file"])
    z, x, y = (_integer(request.match_info[key]) for key in ("z", "x", "y"))
    settings = scenes.enhancement(scene, request.query)
    scenes.tile_window(scene, z, x, y, settings is not None)  # refused before queueing
    return await _in_pool(request, functools.partial(scenes.tile_png, scene, z, x, y, settings))


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RequestError(400, f"{text!r} is not an integer") from None


def make_app(scenes: Scenes, workers: int = WORKERS) -> web.Application:
    """The viewer's aiohttp application over `scenes`, its work on `workers` threads."""
    app = web.Application(middlewares=[json_errors])
    app[SCENES] = scenes
    app[POOL] = ThreadPoolExecutor(workers, thread_name_prefix="innrsic-view")
    app.router.add_get("/", index)
    app.router.add_static("/static", STATIC)
    app.router.add_get("/api/files", files)
    app.router.add_get("/api/models", models)
    app.router.add_get("/api/region", region)
    app.router.add_get(r"/api/tile/{file}/{z}/{x}/{y}.png", tile)

    async def shut_pool(app: web.Application) -> None:
        app[POOL].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(shut_pool)
    return app


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback name or address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def serve(app: web.Application, host: str, port: int,
                ready: Callable[[str], Any]) -> None:
    """Serve `app` on `host`:`port` until cancelled (Ctrl-C); `ready(url)` once listening
    (port 0: the one the system chose)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        ready(f"http://{shown}:{bound}/")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
