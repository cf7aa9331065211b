"""The viewer's page in headless Chromium, driven over the DevTools protocol: the map shows the
scene (the screenshot is not blank) and moving the temperature slider changes the enhanced
side of the compare view and only it."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from .conftest import Viewer, png_pixels

WIDTH, HEIGHT = 1280, 800
IDLE = ("window.viewer && viewer.map && viewer.loading === 0 && "
        "document.querySelectorAll('#map img.leaflet-tile-loaded').length > 0")


class Browser:
    """One headless Chromium page, driven over the DevTools protocol (aiohttp's websocket)."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.calls = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        await self.socket.send_json({"id": self.calls, "method": method, "params": params})
        while True:
            message = json.loads((await self.socket.receive()).data)
            if message.get("id") == self.calls:
                assert "error" not in message, message
                return message["result"]

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not await self.evaluate(expression):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            await asyncio.sleep(0.25)
        await asyncio.sleep(0.6)  # Leaflet's tile fade-in

    async def screenshot(self) -> np.ndarray:
        shot = await self.call("Page.captureScreenshot", format="png")
        return png_pixels(base64.b64decode(shot["data"]))[..., :3].astype(int)


@pytest.fixture(scope="module")
def devtools(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[str]:
    """The DevTools HTTP address of a headless Chromium (its first page target is used)."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1", f"--window-size={WIDTH},{HEIGHT}",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stderr=subprocess.PIPE, text=True,
    )
    line = ""
    while process.stderr and "DevTools listening on" not in line:
        line = process.stderr.readline()
        assert line, "Chromium exited before listening"
    yield "http://" + line.split("ws://", 1)[1].split("/", 1)[0]
    process.terminate()
    process.wait(timeout=30)


async def drive(devtools: str, url: str) -> dict[str, Any]:
    """Open `url` in compare mode at T=0, screenshot, move the slider to 1, screenshot."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{devtools}/json/list") as response:
            target = next(t for t in await response.json() if t["type"] == "page")
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            browser = Browser(ws)
            await browser.call("Page.navigate", url=url)
            await browser.wait_for(IDLE)
            before = await browser.screenshot()
            geometry = await browser.evaluate(
                "JSON.stringify({map: document.getElementById('map').getBoundingClientRect(),"
                " split: viewer.split})")
            await browser.evaluate(
                "const t = document.getElementById('temperature'); t.value = '1';"
                "t.dispatchEvent(new Event('change'));")
            await browser.wait_for(IDLE + " && viewer.requested.some("
                                   "(src) => src.includes('temperature=1'))")
            after = await browser.screenshot()
            requested = await browser.evaluate("viewer.requested")
    return {"before": before, "after": after, "requested": requested,
            "geometry": json.loads(geometry)}


@pytest.mark.slow
def test_the_page_shows_the_scene_and_the_slider_moves_the_enhanced_side(
    viewer: Viewer, devtools: str
) -> None:
    # the scene (448x320) at twice its size, centred: it spans x 192..1088 of the map
    url = (f"{viewer.url}?file=scene.rsic&mode=compare&model=auto&t=0&seed=0"
           f"&x=224&y=160&z=2")
    seen = asyncio.run(drive(devtools, url))
    box = seen["geometry"]["map"]
    divider = int(box["x"] + box["width"] * seen["geometry"]["split"])
    top, bottom = int(box["y"] + box["height"] / 2 - 250), int(box["y"] + box["height"] / 2 + 250)
    left = seen["before"][top:bottom, divider - 400 : divider - 20]
    right = seen["before"][top:bottom, divider + 20 : divider + 400]
    assert left.std() > 10 and right.std() > 10, "the map is blank"
    decoded_change = np.abs(seen["after"][top:bottom, divider - 400 : divider - 20] - left)
    enhanced_change = np.abs(seen["after"][top:bottom, divider + 20 : divider + 400] - right)
    assert decoded_change.max() == 0, "the decoded side changed with the temperature"
    assert enhanced_change.mean() > 1, "the slider did not change the enhanced side"
    enhanced = [src for src in seen["requested"] if "enhance=" in src]
    assert any("temperature=0&" in src for src in enhanced)
    assert any("temperature=1&" in src for src in enhanced)
