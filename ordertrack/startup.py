"""Start-up failures a person can fix: one line on stderr saying what and how, exit status 2.

`ordertrack up`, `worker`, `serve` and `carrier-sim` run inside `one_line_startup_errors()`: a busy
port, an unreachable database, a bad setting or connection settings Temporal refuses end the process
with `error: <what>; <how to fix it>`, never a traceback. Anything else is a bug and shows in full.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.exc import SQLAlchemyError

from ordertrack.connection import ConnectionSettingsError
from ordertrack.settings import Settings, env_name, hide_password
from ordertrack.store.migrate import migrate
from ordertrack.telemetry import TelemetrySettingsError

EXIT_STARTUP = 2


class StartupError(Exception):
    """A start-up failure a person can fix; the message names what failed and how to fix it."""


def settings_problem(err: ValidationError | SettingsError) -> str:
    """A settings error on one line, naming each variable; never the value (it may be a secret)."""
    if isinstance(err, SettingsError):
        # pydantic-settings: 'error parsing value for field "api_keys" from source "EnvSettingsSource"'
        text = str(err)
        field = text.split('field "', 1)[1].split('"', 1)[0] if 'field "' in text else None
        if field in Settings.model_fields:
            return f"{env_name(field)} is not valid JSON"
        return text
    parts = []
    for error in err.errors(include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        field = str(error["loc"][0]) if error["loc"] else None
        parts.append(f"{env_name(field)}: {message}" if field else message)
    return "invalid settings: " + "; ".join(parts)


def describe(err: BaseException) -> str | None:
    """The one line for a start-up failure a person can fix; None for anything else."""
    if isinstance(err, BaseExceptionGroup) and len(err.exceptions) == 1:
        return describe(err.exceptions[0])
    if isinstance(err, StartupError | ConnectionSettingsError | TelemetrySettingsError):
        return str(err)
    if isinstance(err, SettingsError) or (isinstance(err, ValidationError) and err.title == "Settings"):
        return settings_problem(err)
    return None


@contextmanager
def one_line_startup_errors() -> Iterator[None]:
    """Around a process's start and run: a fixable start-up failure becomes `error: ...` on stderr
    and exit status 2.

    The process ends at once (`os._exit`, output flushed): a Temporal client that reached a server
    leaves native threads that can abort the interpreter's teardown (temporalio/sdk-python#300),
    which would turn the one line into a fatal-error dump and the status into SIGABRT."""
    try:
        yield
    except BaseException as err:
        line = describe(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_STARTUP)


def database_problem(database_url: str, err: BaseException) -> StartupError:
    reason = str(getattr(err, "orig", None) or err).strip().splitlines()
    return StartupError(
        f"cannot open the read model's database at {hide_password(database_url)}: "
        f"{reason[0] if reason else type(err).__name__}; check that it is up and ORDERTRACK_DATABASE_URL"
    )


async def prepare_database(settings: Settings) -> None:
    """Migrate the read model at start (unless `MIGRATE_ON_START` is false); a database that cannot
    be reached or refuses the credentials is a `StartupError`."""
    if settings.migrate_on_start:
        await migrate_or_explain(settings.database_url)


async def migrate_or_explain(database_url: str) -> None:
    try:
        await migrate(database_url)
    except (OSError, SQLAlchemyError, TimeoutError) as err:
        raise database_problem(database_url, err) from None
    except Exception as err:  # the driver's own errors (asyncpg: a wrong password, no such database)
        if type(err).__module__.split(".")[0] in {"asyncpg", "aiosqlite", "sqlite3"}:
            raise database_problem(database_url, err) from None
        raise
