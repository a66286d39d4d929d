"""Bulk correction CSVs: header, per-row overrides, blank lines, and messages for bad files."""

from datetime import UTC, datetime, timedelta

import pytest

from ordertrack.domain.statuses import OrderStatus
from ordertrack.orders import orders_query
from starter.bulk import BulkFileError, parse_corrections
from starter.client import parse_since


def parse(
    text: str, status: OrderStatus | None = OrderStatus.DELIVERED, reason: str | None = "carrier confirmed"
):
    return parse_corrections(text, status, reason, "ops-ana")


def test_order_ids_take_the_flags_and_other_columns_are_ignored() -> None:
    rows = parse("order_id,customer\n1001,Ana\n1002,Bo\n")
    assert [(r.line, r.order_id, r.request.status, r.request.reason) for r in rows] == [
        (2, "1001", OrderStatus.DELIVERED, "carrier confirmed"),
        (3, "1002", OrderStatus.DELIVERED, "carrier confirmed"),
    ]
    assert {r.request.operator for r in rows} == {"ops-ana"}


def test_status_and_reason_columns_override_the_flags_per_row() -> None:
    rows = parse(" Order_ID , Status ,reason\n1001,in_transit,\n1002,,lost in depot\n1003,lost,gone\n")
    assert [(r.order_id, r.request.status, r.request.reason) for r in rows] == [
        ("1001", OrderStatus.IN_TRANSIT, "carrier confirmed"),
        ("1002", OrderStatus.DELIVERED, "lost in depot"),
        ("1003", OrderStatus.LOST, "gone"),
    ]


def test_blank_lines_and_a_byte_order_mark_are_skipped() -> None:
    rows = parse("\ufeff\n\norder_id\n\n1001\n , \n1002\n\n")
    assert [(r.line, r.order_id) for r in rows] == [(5, "1001"), (7, "1002")]


def test_a_header_only_file_has_no_rows() -> None:
    assert parse("order_id,status\n") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1001\n1002\n", "line 1: the first line must be a header with an order_id column"),
        ("id,status\n1001,lost\n", "found 'id', 'status'"),
        ("", "the file is empty"),
        ("order_id,status\n1001,teleported\n", "line 2: order 1001: status: Input should be"),
        ("order_id\n1001\n,x\n", "line 3: no order_id"),
        ("order_id\n1001\n1002\n1001\n", "line 4: order 1001 is listed twice (first on line 2)"),
        ("order_id,reason\n1001,no\n", "line 2: order 1001: reason: String should have at least 3"),
    ],
)
def test_bad_files_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(BulkFileError) as raised:
        parse(text)
    assert message in str(raised.value)


def test_a_row_needs_a_status_and_a_reason_from_somewhere() -> None:
    with pytest.raises(BulkFileError, match="line 2: no status for order 1001"):
        parse("order_id\n1001\n", status=None)
    with pytest.raises(BulkFileError, match="line 3: no reason for order 1002"):
        parse("order_id,reason\n1001,mixup fixed\n1002,\n", reason=None)


def test_since_takes_a_duration_or_an_iso_date() -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1, tzinfo=UTC)
    assert parse_since("2026-11-01T08:00:00+02:00", now) == datetime(2026, 11, 1, 6, tzinfo=UTC)
    with pytest.raises(ValueError, match="invalid --since"):
        parse_since("last week", now)


def test_orders_query_adds_start_time_prefix_and_running() -> None:
    query = orders_query(
        "shipped", True, "UPS", since=datetime(2026, 11, 1, tzinfo=UTC), id_prefix="shop1-", running=True
    )
    assert query == (
        "WorkflowType = 'OrderWorkflow' AND OrderStatus = 'shipped' AND OrderDelayed = true"
        " AND Carrier = 'ups' AND StartTime >= '2026-11-01T00:00:00.000000Z'"
        " AND WorkflowId STARTS_WITH 'order-shop1-' AND ExecutionStatus = 'Running'"
    )
    with pytest.raises(ValueError, match="invalid order id prefix"):
        orders_query(id_prefix="x' OR 1=1")
