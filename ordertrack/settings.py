"""Settings from the environment (prefix `ORDERTRACK_`), read once at the edges: worker, CLI, HTTP."""

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ordertrack.domain.policy import Duration, TimingPolicy

VAR_DIR = Path("var")


class ApiKey(BaseModel):
    """What one API key may do: `shop` starts orders and reports fulfillment; `operator` also
    corrects, cancels, changes addresses and rotates tracking links, under its own name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["shop", "operator"]
    name: Annotated[str, Field(min_length=1, max_length=100)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERTRACK_", extra="ignore")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "orders"

    database_url: str = f"sqlite+aiosqlite:///{VAR_DIR / 'ordertrack.db'}"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: Annotated[float, Field(gt=0)] = 30.0
    mail_from: str = "ordertrack <orders@localhost>"
    public_url: str = "http://127.0.0.1:8000"

    carrier: str = "simulated"
    simulated_carrier_url: str = "http://127.0.0.1:8010"
    simulated_carrier_speed: Annotated[float, Field(gt=0)] = 1.0

    payment_timeout: Duration = TimingPolicy().payment_timeout
    ship_by: Duration = TimingPolicy().ship_by
    carrier_poll_interval: Duration = TimingPolicy().carrier_poll_interval
    stale_tracking_after: Duration = TimingPolicy().stale_tracking_after
    review_request_delay: Duration = TimingPolicy().review_request_delay
    estimate_slip: Duration = TimingPolicy().estimate_slip

    worker_shutdown_grace: Duration = timedelta(seconds=20)

    # HTTP: JSON {"<key>": {"role": "shop" | "operator", "name": "<who>"}}; no keys, no API access.
    api_keys: dict[str, ApiKey] = {}
    shop_webhook_url: str | None = None
    shop_webhook_secret: SecretStr | None = None

    def timing_policy(self) -> TimingPolicy:
        return TimingPolicy(
            payment_timeout=self.payment_timeout,
            ship_by=self.ship_by,
            carrier_poll_interval=self.carrier_poll_interval,
            stale_tracking_after=self.stale_tracking_after,
            review_request_delay=self.review_request_delay,
            estimate_slip=self.estimate_slip,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
