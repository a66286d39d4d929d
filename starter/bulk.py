"""Bulk status corrections from a CSV of order ids: parse, plan (dry run) and apply.

The CSV needs a header with an `order_id` column; optional `status` and `reason` columns override
the command's `--status` and `--reason` for their row; other columns are ignored, blank lines too.
Every row is checked before anything is sent, so a bad file changes nothing.
"""

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError
from temporalio.client import Client

from ordertrack import orders
from ordertrack.domain import machine
from ordertrack.domain.machine import TransitionRejected
from ordertrack.domain.messages import CorrectionRequest
from ordertrack.domain.state import OrderState
from ordertrack.domain.statuses import OrderStatus
from ordertrack.domain.view import OrderView

MAX_ROWS = 10_000
CONCURRENCY = 8  # corrections in flight at once; results are still reported in file order


class BulkFileError(ValueError):
    """The CSV cannot be used as it is; the message names the line and what is wrong."""


@dataclass(frozen=True)
class BulkRow:
    line: int  # 1-based line in the file, for messages
    order_id: str
    request: CorrectionRequest


class Result(StrEnum):
    CHANGED = "changed"  # applied, or would be in a dry run
    REFUSED = "refused"
    NOT_FOUND = "not found"


@dataclass(frozen=True)
class RowResult:
    row: BulkRow
    result: Result
    before: OrderStatus | None = None
    detail: str = ""

    def line(self) -> str:
        """`1001: in_transit -> delivered`, `1002: refused: <why, what is allowed>`, `1003: not found`."""
        if self.result == Result.CHANGED:
            return f"{self.row.order_id}: {self.before} -> {self.row.request.status}"
        if self.result == Result.REFUSED:
            return f"{self.row.order_id}: refused: {self.detail}"
        return f"{self.row.order_id}: not found"


def parse_corrections(
    text: str, status: OrderStatus | None, reason: str | None, operator: str
) -> list[BulkRow]:
    """The file's rows as validated correction requests; raises BulkFileError naming the line."""
    lines = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header: list[str] | None = None
    rows: list[BulkRow] = []
    first_line: dict[str, int] = {}
    for cells in lines:
        line = lines.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in cells]
            if "order_id" not in header:
                found = ", ".join(repr(cell) for cell in header)
                raise BulkFileError(
                    f"line {line}: the first line must be a header with an order_id column "
                    f"(optional: status, reason); found {found}"
                )
            continue
        values = dict(zip(header, (cell.strip() for cell in cells), strict=False))
        order_id = values.get("order_id", "")
        if not order_id:
            raise BulkFileError(f"line {line}: no order_id")
        if order_id in first_line:
            raise BulkFileError(
                f"line {line}: order {order_id} is listed twice (first on line {first_line[order_id]})"
            )
        first_line[order_id] = line
        row_status = values.get("status") or status
        row_reason = values.get("reason") or reason
        if not row_status:
            raise BulkFileError(
                f"line {line}: no status for order {order_id} (give --status or a status column)"
            )
        if not row_reason:
            raise BulkFileError(
                f"line {line}: no reason for order {order_id} (give --reason or a reason column)"
            )
        try:
            request = CorrectionRequest.model_validate(
                {"status": row_status, "reason": row_reason, "operator": operator}
            )
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in err.errors()
            )
            raise BulkFileError(f"line {line}: order {order_id}: {problems}") from None
        rows.append(BulkRow(line=line, order_id=order_id, request=request))
        if len(rows) > MAX_ROWS:
            raise BulkFileError(f"more than {MAX_ROWS} orders in one file; split it")
    if header is None:
        raise BulkFileError("the file is empty: it needs a header line with an order_id column")
    return rows


def check_state(view: OrderView) -> OrderState:
    """The state the domain's correction rules read (status, carrier, tracking number): the view's progress.

    The CLI sees the order's view, not its full state (no address or history), so the rest is left
    out; `machine.check_correction` looks at nothing else.
    """
    return OrderState.model_construct(**view.progress(), received_at=view.status_since)


async def plan_row(client: Client, row: BulkRow) -> RowResult:
    """What a correction would do, judged by the domain's own rules on the order's current view."""
    try:
        view = await orders.get_order(client, row.order_id)
    except orders.OrderNotFound:
        return RowResult(row, Result.NOT_FOUND)
    try:
        machine.check_correction(check_state(view), row.request)
    except TransitionRejected as err:
        return RowResult(row, Result.REFUSED, view.status, str(err))
    return RowResult(row, Result.CHANGED, view.status)


async def apply_row(client: Client, row: BulkRow) -> RowResult:
    """Send the correction; the workflow's validator decides, as for `order correct`."""
    try:
        before = (await orders.get_order(client, row.order_id)).status
        await orders.correct_status(client, row.order_id, row.request)
    except orders.OrderNotFound:
        return RowResult(row, Result.NOT_FOUND)
    except orders.RequestRefused as err:
        return RowResult(row, Result.REFUSED, detail=str(err))
    return RowResult(row, Result.CHANGED, before)


async def run_rows(
    rows: Iterable[BulkRow],
    action: Callable[[BulkRow], Awaitable[RowResult]],
    concurrency: int = CONCURRENCY,
) -> AsyncIterator[RowResult]:
    """Results in file order, with at most `concurrency` rows in flight; any other error stops all."""
    gate = asyncio.Semaphore(concurrency)

    async def gated(row: BulkRow) -> RowResult:
        async with gate:
            return await action(row)

    tasks = [asyncio.create_task(gated(row)) for row in rows]
    try:
        for task in tasks:
            yield await task
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
