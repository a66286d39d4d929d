"""`ordertrack`: the command line for developers, shop scripts and operators.

Every command exits 0 on success and otherwise prints one line saying why on stderr, never a
traceback for bad input.
"""

import asyncio
import contextlib
import dataclasses
import getpass
import json
import os
import sys
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import TypeAdapter, ValidationError
from pydantic_settings import SettingsError
from sqlalchemy.exc import SQLAlchemyError
from temporalio.service import RPCError

from ordertrack import orders
from ordertrack.connection import connect
from ordertrack.domain.carrier_report import CarrierReport
from ordertrack.domain.messages import (
    AddressChangeRequest,
    CancelRequest,
    CorrectionRequest,
    FulfillmentUpdate,
)
from ordertrack.domain.models import Address, NewOrder
from ordertrack.domain.notices import SMS_KINDS, MessageKind
from ordertrack.domain.statuses import FINAL, FulfillmentEvent, OrderStatus
from ordertrack.domain.view import OrderView
from ordertrack.logs import configure_logging
from ordertrack.reports import carrier_report_since
from ordertrack.settings import get_settings
from ordertrack.startup import (
    StartupError,
    migrate_or_explain,
    one_line_startup_errors,
    settings_problem,
)
from ordertrack.store import NotificationRow, Store, create_engine
from ordertrack.store.repository import OrderFilter
from ordertrack.tracking_link import tracking_url
from starter import bulk
from starter.client import order_stats, parse_since

app = typer.Typer(help="ordertrack: durable order tracking on Temporal.", no_args_is_help=True)
order_app = typer.Typer(help="Start, inspect and change orders.", no_args_is_help=True)
db_app = typer.Typer(help="The read-model database.", no_args_is_help=True)
mail_app = typer.Typer(help="Customer messages.", no_args_is_help=True)
report_app = typer.Typer(help="Reports from the read model.", no_args_is_help=True)
app.add_typer(order_app, name="order")
app.add_typer(db_app, name="db")
app.add_typer(mail_app, name="mail")
app.add_typer(report_app, name="report")

T = TypeVar("T")


class PreviewFormat(StrEnum):
    HTML = "html"
    TEXT = "text"
    SMS = "sms"


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def validation_summary(err: ValidationError) -> str:
    """Field-level messages on one line: `customer.email: not a valid email; items.0.quantity: ...`."""
    parts = []
    for error in err.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def run(main: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., NoReturn]:
    """Run an async client command to completion and exit with its status."""
    main = _one_line_errors(main)

    @wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> NoReturn:
        code = 0
        try:
            asyncio.run(main(*args, **kwargs))
        except typer.Exit as done:
            code = done.exit_code
        except KeyboardInterrupt:
            code = 130
        except BrokenPipeError:  # the reader went away (`| head`): nothing left to say
            code = 0
        except Exception:  # a bug rather than bad input: show all of it
            traceback.print_exc()
            code = 1
        # The Temporal client's native threads can abort a short-lived process while Python
        # finalizes (temporalio/sdk-python#300); with the output flushed, skip the teardown.
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)

    return wrapper


def _one_line_errors(main: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., Coroutine[Any, Any, T]]:
    """Turn the errors a user can cause into one-line messages and exit codes."""

    @wraps(main)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await main(*args, **kwargs)
        except ValidationError as err:
            fail(f"invalid {err.title}: {validation_summary(err)}", 2)
        except StartupError as err:
            fail(str(err), 2)
        except SettingsError as err:
            fail(settings_problem(err), 2)
        except orders.OrderNotFound as err:
            fail(str(err), 3)
        except (orders.RequestRefused, orders.OrderConflict) as err:
            fail(str(err), 4)
        except RPCError as err:
            fail(f"Temporal answered: {err.message}", 5)
        except BrokenPipeError:
            raise
        except ConnectionError as err:
            fail(f"cannot connect: {err}", 5)
        except RuntimeError as err:  # temporalio raises RuntimeError when the server is unreachable
            if "connect" in str(err).lower():
                settings = get_settings()
                fail(f"cannot reach Temporal at {settings.temporal_address}: is it running? ({err})", 5)
            raise

    return wrapper


def read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        return json.loads(text)
    except FileNotFoundError:
        fail(f"no such file: {path}", 2)
    except json.JSONDecodeError as err:
        fail(f"{path} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}", 2)


def read_text(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        fail(f"no such file: {path}", 2)
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text", 2)


def default_operator() -> str:
    return os.environ.get("ORDERTRACK_OPERATOR") or getpass.getuser()


def print_view(view: OrderView, as_json: bool) -> None:
    if as_json:
        typer.echo(view.model_dump_json(indent=2))
        return
    settings = get_settings()
    flag = "  DELAYED" if view.delayed else ""
    typer.echo(f"order {view.order_id}: {view.status.value}{flag}")
    if view.delayed and view.delay_reason:
        typer.echo(f"  delay:     {view.delay_reason}")
    if view.carrier:
        typer.echo(f"  carrier:   {view.carrier} {view.tracking_number or ''}")
    if view.estimated_delivery:
        typer.echo(f"  estimated: {view.estimated_delivery:%Y-%m-%d %H:%M %Z}")
    typer.echo(f"  tracking:  {tracking_url(settings.public_url, view.tracking_token)}")
    typer.echo("  timeline:")
    for entry in view.timeline:
        why = f" (reason: {entry.reason})" if entry.reason else ""
        where = f" [{entry.location}]" if entry.location else ""
        when = f"{entry.at:%Y-%m-%d %H:%M:%S}"
        typer.echo(f"    {when} {entry.status.value:<17} {entry.message}{where} by {entry.actor}{why}")


async def _client() -> Any:
    return await connect(get_settings())


async def _send(action: Callable[[Any], Awaitable[OrderView]], as_json: bool) -> None:
    print_view(await action(await _client()), as_json)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the order's view as JSON.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")]
NotifyOption = Annotated[
    bool,
    typer.Option(
        "--notify-customer/--no-notify-customer",
        help="Send the customer the message this change deserves (cancelled, address changed...).",
    ),
]
OperatorOption = Annotated[str, typer.Option("--operator", default_factory=default_operator, help="Who.")]
RequestIdOption = Annotated[
    str | None,
    typer.Option(
        "--request-id",
        help="A unique id for this change (a UUID): running the command again with the same id after "
        "a timeout returns the first answer instead of applying the change twice.",
    ),
]


@order_app.command("start")
@run
async def order_start(path: Annotated[str, typer.Argument(help="Order JSON file, or - for stdin.")]) -> None:
    """Start an order; prints the order id and the customer's tracking URL."""
    order = TypeAdapter(NewOrder).validate_python(read_json(path))
    settings = get_settings()
    started = await orders.start_order(
        await _client(),
        order,
        settings.timing_policy(),
        settings.task_queue,
        shop_webhooks=bool(settings.shop_webhook_url),
    )
    note = "" if started.created else " (already started)"
    typer.echo(f"{started.order_id}{note}")
    typer.echo(tracking_url(settings.public_url, started.tracking_token))


@order_app.command("show")
@run
async def order_show(order_id: str, as_json: JsonFlag = False) -> None:
    """Status, delay flag, tracking and timeline from the order's workflow, and the messages sent to
    the customer from the read model's notification log."""
    view = await orders.get_order(await _client(), order_id)
    log, unavailable = await _message_log(order_id)
    if as_json:
        document = view.model_dump(mode="json") | {"messages": [row.model_dump(mode="json") for row in log]}
        typer.echo(json.dumps(document, indent=2))
        return
    print_view(view, as_json)
    typer.echo("  messages:" + (f" (read model unavailable: {unavailable})" if unavailable else ""))
    for row in log:
        reply = row.server_reply or row.last_error or ""
        typer.echo(
            f"    {row.created_at:%Y-%m-%d %H:%M:%S} {row.channel:<5} {row.kind:<20} {row.status:<11} "
            f"{row.dedupe_key}  {row.message_id}  {reply}".rstrip()
        )


async def _message_log(order_id: str) -> tuple[list[NotificationRow], str | None]:
    """The order's notification log, or why it could not be read (the CLI may run far from the
    database; the workflow's part of `show` is still worth printing)."""
    engine = create_engine(get_settings().database_url)
    try:
        return await Store(engine).list_notifications(order_id), None
    except (OSError, SQLAlchemyError) as err:
        return [], str(err).splitlines()[0]
    finally:
        await engine.dispose()


SinceOption = Annotated[
    str | None,
    typer.Option(help="Only orders started within this duration (7d, 36h) or since this ISO date."),
]
PrefixOption = Annotated[str | None, typer.Option("--prefix", help="Only orders whose id starts with this.")]


def _orders_query(
    status: OrderStatus | None,
    delayed: bool,
    carrier: str | None,
    since: str | None,
    prefix: str | None,
    running: bool = False,
) -> str:
    try:
        return orders.orders_query(
            status.value if status else None,
            True if delayed else None,
            carrier,
            since=parse_since(since) if since else None,
            id_prefix=prefix,
            running=running,
        )
    except ValueError as err:
        fail(str(err), 2)


class ListSource(StrEnum):
    TEMPORAL = "temporal"
    DB = "db"


@order_app.command("list")
@run
async def order_list(
    status: Annotated[OrderStatus | None, typer.Option(help="Only orders in this status.")] = None,
    delayed: Annotated[bool, typer.Option("--delayed", help="Only delayed orders.")] = False,
    carrier: Annotated[str | None, typer.Option(help="Only orders with this carrier.")] = None,
    since: SinceOption = None,
    prefix: PrefixOption = None,
    email: Annotated[
        str | None, typer.Option(help="Only this customer's orders (any case; --source db).")
    ] = None,
    source: Annotated[
        ListSource,
        typer.Option(help="temporal: visibility, as the Temporal UI sees it; db: the read model."),
    ] = ListSource.TEMPORAL,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Orders newest first, through Temporal visibility (the contract's search attributes) or the
    read model (`--source db`, the same search as `GET /api/orders`)."""
    if source is ListSource.DB:
        if prefix:
            fail("--prefix needs --source temporal (the read model is searched by exact fields)", 2)
        found = await _list_from_read_model(status, delayed, carrier, since, email, limit)
    elif email:
        fail("--email needs --source db: customers' emails are not in Temporal's search attributes", 2)
    else:
        query = _orders_query(status, delayed, carrier, since, prefix)
        found = await orders.list_orders(await _client(), query, limit)
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(row) for row in found], default=str, indent=2))
    for row in [] if as_json else found:
        typer.echo(
            f"{row.order_id:<20} {row.status or '-':<17} {'delayed' if row.delayed else '':<8}"
            f"{row.carrier or '-':<10} {row.tracking_number or '-'}"
        )
    typer.echo(f"{len(found)} order(s)", err=True)


async def _list_from_read_model(
    status: OrderStatus | None,
    delayed: bool,
    carrier: str | None,
    since: str | None,
    email: str | None,
    limit: int,
) -> list[orders.OrderSummary]:
    where = OrderFilter(
        statuses=(status,) if status else (),
        delayed=True if delayed else None,
        carrier=carrier,
        created_since=parse_since(since) if since else None,
        email=email,
    )
    store = Store.from_url(get_settings().database_url)
    try:
        found = await store.list_orders(where, limit)
    finally:
        await store.close()
    return [
        orders.OrderSummary(
            order_id=row.order_id,
            workflow_id=row.workflow_id,
            status=row.status.value,
            delayed=row.delayed,
            carrier=row.carrier,
            tracking_number=row.tracking_number,
            expected_delivery_at=row.estimated_delivery,
            running=row.status not in FINAL,
        )
        for row in found
    ]


@order_app.command("correct-bulk")
@run
async def order_correct_bulk(
    path: Annotated[str, typer.Argument(help="CSV with an order_id column (- for stdin).")],
    operator: OperatorOption,
    status: Annotated[
        OrderStatus | None, typer.Option(help="The status to set, unless the row has a status column.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Why, for the audit trail, unless the row has a reason column.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say what would change or be refused.")
    ] = False,
) -> None:
    """Correct many orders from a CSV; one line per order, exit 4 unless every one was corrected."""
    try:
        rows = bulk.parse_corrections(read_text(path), status, reason, operator)
    except bulk.BulkFileError as err:
        fail(f"{path}: {err}", 2)
    client = await _client()
    action = bulk.plan_row if dry_run else bulk.apply_row
    tally: Counter[bulk.Result] = Counter()
    async for result in bulk.run_rows(rows, lambda row: action(client, row)):
        tally[result.result] += 1
        typer.echo(result.line())
    verb = "would be corrected" if dry_run else "corrected"
    typer.echo(
        f"{tally[bulk.Result.CHANGED]} {verb}, {tally[bulk.Result.REFUSED]} refused, "
        f"{tally[bulk.Result.NOT_FOUND]} not found" + (" (dry run: nothing changed)" if dry_run else ""),
        err=True,
    )
    if tally[bulk.Result.CHANGED] != len(rows):
        raise typer.Exit(4)


@order_app.command("event")
@run
async def order_event(
    order_id: str,
    event: FulfillmentEvent,
    carrier: Annotated[str | None, typer.Option(help="The label's carrier (packed or shipped).")] = None,
    tracking_number: Annotated[str | None, typer.Option(help="The label's tracking number.")] = None,
    request_id: RequestIdOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Report warehouse progress (record_fulfillment); a tracking number alone means the default carrier."""
    carrier = carrier or (get_settings().carrier if tracking_number else None)
    update = FulfillmentUpdate(event=event, carrier=carrier, tracking_number=tracking_number)
    await _send(lambda client: orders.record_fulfillment(client, order_id, update, request_id), as_json)


@order_app.command("correct")
@run
async def order_correct(
    order_id: str,
    status: Annotated[OrderStatus, typer.Option(help="The status to set.")],
    reason: ReasonOption,
    operator: OperatorOption,
    notify_customer: NotifyOption = True,
    request_id: RequestIdOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Correct an order's status by hand, with a reason (audited)."""
    request = CorrectionRequest(
        status=status, reason=reason, operator=operator, notify_customer=notify_customer
    )
    await _send(lambda client: orders.correct_status(client, order_id, request, request_id), as_json)


@order_app.command("cancel")
@run
async def order_cancel(
    order_id: str,
    reason: ReasonOption,
    operator: OperatorOption,
    notify_customer: NotifyOption = True,
    request_id: RequestIdOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Cancel an order that has not shipped yet."""
    request = CancelRequest(reason=reason, operator=operator, notify_customer=notify_customer)
    await _send(lambda client: orders.cancel_order(client, order_id, request, request_id), as_json)


@order_app.command("address")
@run
async def order_address(
    order_id: str,
    path: Annotated[str, typer.Argument(help="Address JSON file, or - for stdin.")],
    reason: ReasonOption,
    operator: OperatorOption,
    notify_customer: NotifyOption = True,
    request_id: RequestIdOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Fix the shipping address of an order that has not shipped yet."""
    request = AddressChangeRequest(
        address=Address.model_validate(read_json(path)),
        reason=reason,
        operator=operator,
        notify_customer=notify_customer,
    )
    await _send(lambda client: orders.change_shipping_address(client, order_id, request, request_id), as_json)


@order_app.command("rotate-link")
@run
async def order_rotate_link(
    order_id: str,
    reason: ReasonOption,
    operator: OperatorOption,
    request_id: RequestIdOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Replace the customer's tracking link (the old one stops working)."""
    await _send(
        lambda client: orders.rotate_tracking_token(client, order_id, reason, operator, request_id), as_json
    )


@app.command("stats")
@run
async def stats_command(
    carrier: Annotated[str | None, typer.Option(help="Only orders with this carrier.")] = None,
    since: SinceOption = None,
    prefix: PrefixOption = None,
    running: Annotated[
        bool, typer.Option("--running/--all", help="Only running orders, or all (default).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """How many orders are in each status, and how many are delayed (Temporal visibility)."""
    query = _orders_query(None, False, carrier, since, prefix, running)
    stats = await order_stats(await _client(), query)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(stats), indent=2))
        return
    for name, count in stats.by_status.items():
        typer.echo(f"{name:<21} {count:>7}")
    typer.echo(f"{'total':<21} {stats.total:>7}")
    typer.echo(f"{'delayed':<21} {stats.delayed:>7}")


@report_app.command("carriers")
@run
async def report_carriers(
    since: Annotated[
        str, typer.Option(help="Orders shipped since: a duration back from now (30d, 12h) or an ISO date.")
    ] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Carrier performance over the orders shipped in the window, from the read model (as
    `GET /api/reports/carriers` and the /ops/carriers page)."""
    settings = get_settings()
    store = Store.from_url(settings.database_url)
    try:
        report = await carrier_report_since(store, since, datetime.now(UTC))
    except ValueError as err:
        fail(f"invalid --since: {err}", 2)
    except (OSError, SQLAlchemyError) as err:
        fail(f"cannot read the read model: {str(err).splitlines()[0]} (run `ordertrack db upgrade`?)", 5)
    finally:
        await store.close()
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        print_carrier_report(report)


def print_carrier_report(report: CarrierReport) -> None:
    typer.echo(f"orders shipped {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC")
    if not report.carriers:
        typer.echo("no order was shipped in this window")
        return
    typer.echo(
        f"{'carrier':<12} {'shipped':>8} {'delivered':>9} {'on time':>8} {'late':>6} {'no est.':>7} "
        f"{'on-time':>7} {'median d':>8} {'p90 d':>6} {'failed':>6} {'except.':>7} {'lost':>5}"
    )

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    def days(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    for c in report.carriers:
        typer.echo(
            f"{c.carrier:<12} {c.shipped:>8} {c.delivered:>9} {c.on_time:>8} {c.late:>6} "
            f"{c.without_estimate:>7} {share(c.on_time_rate):>7} {days(c.median_days):>8} "
            f"{days(c.p90_days):>6} {c.failed_attempts:>6} {c.exceptions:>7} {c.lost:>5}"
        )
    typer.echo("on time per week of delivery (Monday, UTC):")
    for c in report.carriers:
        weeks = "  ".join(f"{w.week:%m-%d} {w.rate:.0%}" for w in c.weeks) or "-"
        typer.echo(f"  {c.carrier:<12} {weeks}")


@app.command("worker")
def worker_command() -> None:
    """The Temporal worker alone (production); waits for Temporal if it is not up yet, and stops
    gracefully on SIGTERM or Ctrl-C."""
    import worker

    worker.main()


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Behind a reverse proxy: its addresses (comma list, or *) whose X-Forwarded-For is "
            "believed, so rate limits count clients, not the proxy (ORDERTRACK_FORWARDED_ALLOW_IPS)."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes sharing the port (about one per core).")
    ] = 1,
) -> None:
    """The HTTP server alone (production): shop API, tracking pages, health, metrics. Starts without
    waiting for Temporal (GET /healthz says 503 until it is connected)."""
    from ordertrack.serving import run
    from ordertrack.web.server import placements, serve, serve_in_workers

    configure_logging()
    with one_line_startup_errors():
        settings = get_settings()  # a bad setting fails here, once, before any worker starts
        if forwarded_allow_ips is not None:
            settings = settings.model_copy(update={"forwarded_allow_ips": forwarded_allow_ips})
        processes = f" in {workers} processes" if workers > 1 else ""
        typer.echo(f"ordertrack HTTP on http://{host}:{port}{processes} (API docs at /docs)")
        if workers > 1:
            serve_in_workers(host, port, workers)
        else:
            for placement in placements(settings):
                typer.echo(placement)
            run(serve(settings, host, port))


@app.command("carrier-sim")
def carrier_sim_command(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8010,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    speed: Annotated[float, typer.Option(min=0.001, help="Simulated seconds per real second.")] = 1.0,
    error_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of requests that fail.")] = 0.0,
    error_kinds: Annotated[str, typer.Option(help="Comma list of 5xx, 429, timeout, malformed.")] = "5xx",
) -> None:
    """The simulated carrier alone."""
    from ordertrack.carriers.simulator import FaultConfig, serve_simulator

    configure_logging()
    try:
        kinds = [kind.strip() for kind in error_kinds.split(",") if kind.strip()]
        faults = FaultConfig.model_validate({"rate": error_rate, "kinds": kinds})
    except ValidationError as err:
        fail(f"invalid fault settings: {validation_summary(err)}", 2)
    typer.echo(f"simulated carrier on http://{host}:{port} at {speed:g}x")
    with one_line_startup_errors():
        asyncio.run(serve_simulator(host, port, speed, faults, moved_by="--port"))


@app.command("up")
def up_command(
    demo: Annotated[
        bool, typer.Option("--demo", help="Also feed sample orders that move through their lives.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the HTTP API and tracking pages.")] = 8000,
    ui_port: Annotated[int, typer.Option(help="Port of the Temporal UI.")] = 8233,
    sms_port: Annotated[int, typer.Option(help="Port of the local SMS sink.")] = 8020,
) -> None:
    """Everything on embedded defaults: Temporal dev server, worker, SMTP sink, simulated carrier.
    A port already taken is named, with the flag or setting that moves it (exit status 2)."""
    from starter.up import UpPorts, run_stack

    with one_line_startup_errors():
        run_stack(get_settings(), demo=demo, ports=UpPorts(http=port, ui=ui_port, sms=sms_port))


@db_app.command("upgrade")
@run
async def db_upgrade() -> None:
    """Create or migrate the read-model schema: the deploy step when workers and servers run with
    ORDERTRACK_MIGRATE_ON_START=false (by default they also do it at start)."""
    await migrate_or_explain(get_settings().database_url)
    typer.echo("database is at the latest schema")


@mail_app.command("preview")
@run
async def mail_preview(
    kind: Annotated[MessageKind, typer.Argument(help="The message kind.")],
    locale: Annotated[str, typer.Option(help="en, pt-BR, es, ca or ko (others fall back to en).")] = "en",
    format: Annotated[
        PreviewFormat, typer.Option("--format", help="html, text (with its subject) or sms.")
    ] = PreviewFormat.TEXT,
) -> None:
    """Render a message for a sample order, for people editing templates and translations."""
    from ordertrack.mail.preview import preview

    if format == PreviewFormat.SMS and kind not in SMS_KINDS:
        fail(f"{kind.value} is never sent as a text; texts go for {', '.join(sorted(SMS_KINDS))}", 2)
    typer.echo(preview(kind, locale, format.value), nl=False)
