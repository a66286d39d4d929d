"""`ordertrack report carriers`: the carrier report from the read model, as a real process."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ordertrack.store import migrate
from tests.shipments import EXPECTED, seed_shipments

ORDERTRACK = str(Path(sys.executable).parent / "ordertrack")


def report(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ORDERTRACK_")}
    env["ORDERTRACK_DATABASE_URL"] = database_url
    return subprocess.run(
        [ORDERTRACK, "report", "carriers", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.fixture
async def seeded(tmp_path: Path) -> str:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'ordertrack.db'}"
    await migrate(database_url)
    await seed_shipments(database_url, datetime.now(UTC))  # days away from the window's edges
    return database_url


def test_the_table_shows_each_carrier(seeded: str) -> None:
    shown = report(seeded)

    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line.split()[1:] for line in shown.stdout.splitlines()[2:4]}
    assert rows["dhl"] == ["1500", "1200", "600", "400", "200", "60%", "3", "5", "200", "100", "100"]
    assert rows["ups"] == ["850", "800", "400", "400", "0", "50%", "2.25", "2.5", "0", "0", "0"]
    assert "on time per week of delivery" in shown.stdout


def test_json_has_the_apis_shape(seeded: str) -> None:
    shown = report(seeded, "--since", "30d", "--json")

    assert shown.returncode == 0, shown.stderr
    carriers = {c.pop("carrier"): c for c in json.loads(shown.stdout)["carriers"]}
    assert {name: {k: v for k, v in c.items() if k != "weeks"} for name, c in carriers.items()} == EXPECTED


@pytest.mark.parametrize(
    ("since", "says"),
    [("2y", "'2y': use a duration"), ("2999-01-01", "is not before now"), ("500d", "a year at most")],
)
def test_a_bad_since_is_refused_in_one_line(tmp_path: Path, since: str, says: str) -> None:
    shown = report(
        f"sqlite+aiosqlite:///{tmp_path / 'ordertrack.db'}", "--since", since
    )  # read before any query

    assert shown.returncode == 2 and shown.stdout == ""
    assert shown.stderr.startswith("error: invalid --since: ") and says in shown.stderr
    assert shown.stderr.strip().count("\n") == 0


def test_a_read_model_not_set_up_is_said_in_one_line(tmp_path: Path) -> None:
    shown = report(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")

    assert shown.returncode == 5
    assert "cannot read the read model" in shown.stderr and "ordertrack db upgrade" in shown.stderr
