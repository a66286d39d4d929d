"""A Temporal call that fails because the server is away is a 503 to retry, never a 500."""

import pytest
from temporalio.service import RPCError, RPCStatusCode

from ordertrack.web.errors import ApiError
from ordertrack.web.temporal import outage_as_503


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (RPCStatusCode.UNAVAILABLE, "connection refused"),
        (RPCStatusCode.DEADLINE_EXCEEDED, "deadline exceeded"),
        (RPCStatusCode.UNKNOWN, "transport error"),  # the connection broke mid-call
    ],
)
def test_an_outage_is_a_503(status: RPCStatusCode, message: str) -> None:
    with pytest.raises(ApiError) as raised, outage_as_503("in a test"):
        raise RPCError(message, status, b"")
    assert raised.value.status_code == 503


@pytest.mark.parametrize(
    ("status", "message"),
    [(RPCStatusCode.INVALID_ARGUMENT, "bad request"), (RPCStatusCode.UNKNOWN, "something else")],
)
def test_other_errors_go_on(status: RPCStatusCode, message: str) -> None:
    with pytest.raises(RPCError), outage_as_503("in a test"):
        raise RPCError(message, status, b"")
