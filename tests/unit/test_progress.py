"""One definition of the order's public shape (`OrderProgress`): every projection builds on it or
takes its fields from it by name, and the JSON each one sends keeps the shape the contract has."""

import pytest
from pydantic import BaseModel

from ordertrack.domain.progress import KeyedProgress, OrderProgress
from ordertrack.domain.records import ShopEvent
from ordertrack.domain.state import OrderState
from ordertrack.domain.view import OrderView, order_view
from ordertrack.names import SEARCH_ATTRIBUTE_FIELDS
from ordertrack.store.repository import StoredOrder
from ordertrack.store.tables import orders
from ordertrack.web.schemas import ListedOrderOut, OrderOut, OrderStatusOut, OrderSummaryOut
from tests.factories import LATE_PROGRESS, NOW, late_state, sample_order

PROGRESS = list(OrderProgress.model_fields)
API_MODELS = [OrderSummaryOut, OrderStatusOut, ListedOrderOut, OrderOut]


def test_the_sample_values_cover_every_progress_field():
    assert set(LATE_PROGRESS) == set(PROGRESS)


@pytest.mark.parametrize(
    "model", [OrderState, OrderView, StoredOrder, *API_MODELS], ids=lambda model: model.__name__
)
def test_every_projection_of_an_order_is_built_on_the_one_definition(model: type[BaseModel]):
    assert issubclass(model, OrderProgress)
    assert set(PROGRESS) <= set(model.model_fields)


def test_projections_of_one_order_lead_with_its_id():
    keyed = [OrderView, StoredOrder, *API_MODELS]
    assert all(issubclass(model, KeyedProgress) for model in keyed)
    assert all(list(model.model_fields)[:1] == ["order_id"] for model in keyed)


def test_the_view_carries_the_state_progress_and_keeps_its_json_shape():
    view = order_view(sample_order(), late_state(), "token")
    assert view.progress() == LATE_PROGRESS
    # The `status` query's answer and `order show --json`, field for field as before.
    assert list(view.model_dump(mode="json")) == [
        "order_id",
        "status",
        "status_since",
        "delayed",
        "delay_reason",
        "delay_kind",
        "carrier",
        "tracking_number",
        "estimated_delivery",
        "tracking_token",
        "version",
        "timeline",
    ]


def test_the_read_model_has_a_column_for_every_field_of_a_stored_order():
    assert set(PROGRESS) <= set(StoredOrder.model_fields) <= set(orders.c.keys())


@pytest.mark.parametrize("model", API_MODELS, ids=lambda model: model.__name__)
def test_the_api_publishes_the_progress_without_the_delay_code(model: type[BaseModel]):
    published = model.model_json_schema(mode="serialization")["properties"]
    assert [name for name in published if name in PROGRESS] == [n for n in PROGRESS if n != "delay_kind"]


def test_an_api_answer_carries_every_published_progress_value():
    view = order_view(sample_order(), late_state(), "token")
    out = OrderStatusOut(
        order_id=view.order_id,
        **view.progress(),
        tracking_url="https://shop.example/t/token",
        version=view.version,
        timeline=[],
    )
    answer = out.model_dump(mode="json")
    published = [name for name in PROGRESS if name != "delay_kind"]
    assert {name: answer[name] for name in published} == view.model_dump(mode="json", include=set(published))
    assert "delay_kind" not in answer


def test_shop_events_publish_the_contract_subset_filled_from_the_state():
    state = late_state()
    event = ShopEvent.of("1001", state, NOW)
    shared = [name for name in ShopEvent.model_fields if name in PROGRESS]
    assert shared == ["status", "delayed", "carrier", "tracking_number", "estimated_delivery", "delay_reason"]
    for name in shared:
        assert ShopEvent.model_fields[name].annotation == OrderProgress.model_fields[name].annotation
        assert getattr(event, name) == LATE_PROGRESS[name]
    assert (event.event_id, event.seq) == (f"evt_1001_{state.version}", state.version)
    # The body shops receive, in the contract's order.
    assert list(event.model_dump(mode="json")) == [
        "event_id",
        "order_id",
        "status",
        "delayed",
        "at",
        "seq",
        "carrier",
        "tracking_number",
        "estimated_delivery",
        "delay_reason",
    ]


def test_every_search_attribute_mirrors_a_progress_field():
    assert {field for _, field in SEARCH_ATTRIBUTE_FIELDS} <= set(PROGRESS)
