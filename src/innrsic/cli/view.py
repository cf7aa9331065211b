"""`innrsic view`: serve .rsic scenes to the browser (`innrsic.view`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import webbrowser
from pathlib import Path

from innrsic.cli.coding import rsic_files
from innrsic.cli.options import add_device_option
from innrsic.errors import UsageError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765

EXAMPLES = """examples:
  innrsic view scene.rsic
  innrsic view bitstreams/ --port 8800 --no-browser
  innrsic view scene.rsic --host 0.0.0.0     # reachable from other machines: warned about
  innrsic view scene.rsic --device cpu       # enhance on the CPU even where there is a GPU

The page is a map of each scene: the decoded image, the enhanced one, or both with a swipe
divider; the enhancer (auto: the shipped one for the file's codec), its temperature (slider)
and seed are chosen on the page. Tiles are decoded and enhanced on demand.
`GET /api/region?file=NAME&x=&y=&w=&h=[&enhance=MODEL&temperature=T&seed=S]` returns the PNG
`innrsic decompress NAME --region x,y,w,h [--enhance MODEL ...]` writes. Only the files
named here are served. Ctrl-C stops the server.
"""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535; 0: any free)")
    return port


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the view command."""
    parser = subparsers.add_parser(
        "view", help="show .rsic scenes in the browser: decoded vs enhanced, temperature slider",
        epilog=EXAMPLES,
    )
    parser.add_argument("input", nargs="+", type=Path, metavar="PATH",
                        help=".rsic files, or folders searched for them")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help="port to listen on (0: any free one, printed)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; other than loopback, anyone who can reach "
                        "this machine sees the scenes (warned about)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    add_device_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from innrsic.enhancer.settings import resolve_device
    from innrsic.view.scenes import Scenes
    from innrsic.view.server import is_loopback, make_app, serve

    device = resolve_device(args.device)  # cuda where there is none: refused before serving
    scenes = Scenes(rsic_files(args.input), device)
    for scene in scenes.scenes.values():
        if "error" in scene.info:
            log.warning("%s is damaged (%s); its damaged tiles show as error tiles",
                        scene.path, scene.info["error"])
    if not is_loopback(args.host):
        log.warning("listening on %s, not loopback: anyone who can reach this machine on port "
                    "%d can read the served scenes", args.host, args.port)

    def ready(url: str) -> None:
        print(f"serving {len(scenes.scenes)} scene(s) at {url} (Ctrl-C stops)", flush=True)
        if not args.no_browser:
            webbrowser.open(url)

    # The page moves the temperature off each model's own all the time: not worth a warning
    # while it serves (the level is put back after, for whatever else runs in this process).
    settings_log = logging.getLogger("innrsic.enhancer.settings")
    previous = settings_log.level
    settings_log.setLevel(logging.ERROR)
    try:
        asyncio.run(serve(make_app(scenes), args.host, args.port, ready))
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") \
            from exc
    finally:
        settings_log.setLevel(previous)
    return 0
