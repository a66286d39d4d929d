"""Store activities: the workflow's writes to the read model (idempotent, so retries are harmless)."""

from temporalio import activity

from ordertrack.domain.records import ChangeRecord, OrderRecord
from ordertrack.names import RECORD_CHANGE, SAVE_ORDER
from ordertrack.store import Store


class StoreActivities:
    """Activities bound to one `Store`, so a worker shares one engine and connection pool."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @activity.defn(name=SAVE_ORDER)
    async def save_order(self, record: OrderRecord) -> None:
        created = await self._store.save_order(record)
        activity.logger.info(
            "save_order %s v%d: %s",
            record.order.order_id,
            record.view.version,
            "created" if created else "already saved",
        )

    @activity.defn(name=RECORD_CHANGE)
    async def record_change(self, record: ChangeRecord) -> None:
        applied = await self._store.record_change(record)
        activity.logger.info(
            "record_change %s v%d: %s, %d entries",
            record.view.order_id,
            record.view.version,
            "applied" if applied else "older than stored, entries only",
            len(record.entries),
        )
