"""The tracking page in a real browser: headless Chromium at a phone's width, served by uvicorn.

Chromium is Debian's `chromium` package; the set-up installs it with apt-get when it is missing and
the tests skip, saying why, only when it cannot be installed. `UPDATE_DOCS_SCREENSHOT=1`
also refreshes the README's `docs/tracking-page.png` and `docs/ops-carriers.png` from the same pages
(at twice the density).
"""

import asyncio
import os
import re
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ordertrack.serving import serve_app
from ordertrack.settings import ApiKey, Settings
from ordertrack.store.repository import Store
from ordertrack.web.app import create_app
from tests.conftest import free_port
from tests.shipments import seed_shipments
from tests.web.conftest import OPERATOR_KEY, OPERATOR_NAME
from tests.web.test_pages import SUPPORT, TOKEN, seed_order, text_of

PHONE = (390, 844)
DOCS = Path(__file__).resolve().parents[2] / "docs"
DOCS_SCREENSHOT = DOCS / "tracking-page.png"
DOCS_CARRIERS_SCREENSHOT = DOCS / "ops-carriers.png"
DESKTOP = (1100, 1000)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _find_chromium() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", *args], capture_output=True, text=True, env=env, timeout=1200, check=False
    )


def _install_chromium() -> str:
    """Install Debian's chromium (updating the package lists once if the first try fails)."""
    if shutil.which("apt-get") is None:
        pytest.skip("Chromium is not installed and there is no apt-get to install it with")
    if os.geteuid() != 0:
        pytest.skip("Chromium is not installed and installing it with apt-get needs root")
    result = _apt_get("install", "-y", "chromium")
    if result.returncode != 0:
        _apt_get("update")
        result = _apt_get("install", "-y", "chromium")
    found = _find_chromium()
    if found is None:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"Chromium could not be installed with apt-get: {tail[0]}")
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    return _find_chromium() or _install_chromium()


@dataclass
class Served:
    base_url: str
    store: Store


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[Served]:
    """The real app on a free loopback port, in this event loop (Chromium runs as a subprocess)."""
    app = create_app(settings)
    port, stop = free_port(), asyncio.Event()
    server = asyncio.create_task(serve_app(app, "127.0.0.1", port, stop=stop))
    base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            if server.done():
                server.result()  # raises what stopped it
            try:
                await client.get(f"{base_url}/t")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    try:
        yield Served(base_url, app.state.resources.store)
    finally:
        stop.set()
        await asyncio.wait_for(server, 10)


def browser_settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'var' / 'ordertrack.db'}",
        simulated_carrier_url="https://carrier.example",
        **changes,
    )


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serve(browser_settings(tmp_path, **SUPPORT)) as served:
        yield served


async def run_chromium(
    chromium: str, profile: Path, url: str, *args: str, scale: int = 1, size: tuple[int, int] = PHONE
) -> str:
    """One headless Chromium run against `url`; returns its stdout (the DOM for `--dump-dom`)."""
    width, height = size
    process = await asyncio.create_subprocess_exec(
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        f"--force-device-scale-factor={scale}",
        *args,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout.decode()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


async def test_tracking_page_in_chromium_at_phone_width(
    chromium: str, served: Served, tmp_path: Path
) -> None:
    await seed_order(served.store, locale="pt-BR", journey="delayed")
    url = f"{served.base_url}/t/{TOKEN}"

    dom = await run_chromium(chromium, tmp_path / "profile", url, "--dump-dom")
    screenshot = tmp_path / "page.png"
    await run_chromium(chromium, tmp_path / "profile", url, f"--screenshot={screenshot}")

    text = text_of(dom)
    assert '<html lang="pt-BR">' in dom
    for words in (
        "Em trânsito",
        "Seu pedido está atrasado",
        "São Paulo, BR",
        "SIM-DELAYED-1001",
        "Histórico",
    ):
        assert words in text
    assert "Rua Augusta" not in dom and "ana@example.com" not in dom
    assert png_size(screenshot) == PHONE

    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shot = tmp_path / "docs.png"
        await run_chromium(chromium, tmp_path / "profile", url, f"--screenshot={shot}", scale=2)
        shutil.copyfile(shot, DOCS_SCREENSHOT)


async def test_support_block_in_chromium_at_phone_width(
    chromium: str, served: Served, tmp_path: Path
) -> None:
    """The shop's name and each way to reach its support, as a phone shows them (the whole page at
    a phone's width, for a person to look at: `support.png` in the test's folder)."""
    await seed_order(served.store, locale="pt-BR")
    url = f"{served.base_url}/t/{TOKEN}"

    dom = await run_chromium(chromium, tmp_path / "profile", url, "--dump-dom")
    screenshot = tmp_path / "support.png"
    whole_page = (PHONE[0], 2400)
    await run_chromium(chromium, tmp_path / "profile", url, f"--screenshot={screenshot}", size=whole_page)

    [block] = re.findall(r'<section[^>]*data-block="support".*?</section>', dom, re.S)
    text = text_of(block)
    assert "Precisa de ajuda?" in text and "A Loja Aurora está aqui para ajudar" in text
    assert "Escrever para ajuda@aurora.example" in text and "Ligar para +55 11 3333-4444" in text
    assert "Acessar a central de ajuda" in text
    assert 'href="tel:+551133334444"' in block and 'href="https://aurora.example/ajuda"' in block
    assert "Loja Aurora" in text_of(dom.split("<section")[0])  # the shop's name above the status
    assert "Simulated Carrier" in text_of(dom)  # the carrier's name, not its code
    assert png_size(screenshot) == whole_page


async def test_not_found_page_in_chromium(chromium: str, served: Served, tmp_path: Path) -> None:
    dom = await run_chromium(chromium, tmp_path / "profile", f"{served.base_url}/t/nope", "--dump-dom")

    assert "Tracking page not found" in text_of(dom)
    assert 'action="/t"' in dom


async def test_carrier_report_page_in_chromium_with_basic_auth(chromium: str, tmp_path: Path) -> None:
    settings = browser_settings(
        tmp_path, api_keys={OPERATOR_KEY: ApiKey(role="operator", name=OPERATOR_NAME)}
    )
    async with serve(settings) as served:
        await seed_shipments(settings.database_url, datetime.now(UTC))  # days from the window's edges
        url = served.base_url.replace("http://", f"http://ops:{OPERATOR_KEY}@") + "/ops/carriers"
        profile = tmp_path / "profile"
        dom = await run_chromium(chromium, profile, url, "--dump-dom", size=DESKTOP)
        screenshot = tmp_path / "carriers.png"
        await run_chromium(chromium, profile, url, f"--screenshot={screenshot}", size=DESKTOP)
        if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
            shot = tmp_path / "docs.png"
            await run_chromium(chromium, profile, url, f"--screenshot={shot}", scale=2, size=DESKTOP)
            shutil.copyfile(shot, DOCS_CARRIERS_SCREENSHOT)

    text = text_of(dom)
    assert "Carrier performance" in text and OPERATOR_NAME in text
    assert "dhl 1500 1200 600 400 200 60% 3 5 200 100 100" in text
    assert dom.count("<polyline") >= 2 and "<circle" in dom
    assert png_size(screenshot) == DESKTOP
