"""Customer links to carriers' own tracking pages, and the registry's fallback to them."""

import pytest

from ordertrack.carriers.known import carrier_key
from ordertrack.carriers.links import TEMPLATES, carrier_link
from ordertrack.carriers.registry import CarrierRegistry

EXPECTED = {
    "ups": ("1Z999AA10123456784", "https://www.ups.com/track?loc=en_US&tracknum=1Z999AA10123456784"),
    "usps": (
        "9400111899223197428490",
        "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223197428490",
    ),
    "fedex": ("771234567890", "https://www.fedex.com/fedextrack/?trknbr=771234567890"),
    "dhl": (
        "1234567890",
        "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id=1234567890",
    ),
    "correios": (
        "AA123456789BR",
        "https://rastreamento.correios.com.br/app/index.php?objetos=AA123456789BR",
    ),
    "ctt": (
        "RR123456789PT",
        "https://www.ctt.pt/feapl_2/app/open/objectSearch/objectSearch.jspx?objects=RR123456789PT",
    ),
    "koreapost": (
        "6012345678901",
        "https://service.epost.go.kr/trace.RetrieveDomRigiTraceList.comm?sid1=6012345678901",
    ),
}


def test_every_template_is_tested() -> None:
    assert set(EXPECTED) == set(TEMPLATES)


@pytest.mark.parametrize("carrier", sorted(EXPECTED))
def test_each_carriers_template(carrier: str) -> None:
    number, url = EXPECTED[carrier]
    assert carrier_link(carrier, number) == url


def test_korea_post_international_items_use_the_ems_page() -> None:
    assert carrier_link("korea-post", "EE123456789KR") == (
        "https://service.epost.go.kr/trace.RetrieveEmsRigiTraceList.comm?POST_CODE=EE123456789KR"
    )


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("UPS", "ups"),
        ("DHLExpress", "dhl"),
        ("dhl_express", "dhl"),
        ("brazil-correios", "correios"),
        ("Correios", "correios"),
        ("portugal-ctt", "ctt"),
        ("korea-post", "koreapost"),
        ("KoreaPost", "koreapost"),
        ("fedex", "fedex"),
    ],
)
def test_aggregator_codes_and_spellings_are_aliases(name: str, key: str) -> None:
    assert carrier_key(name) == key


def test_the_number_is_url_encoded_and_trimmed() -> None:
    assert (
        carrier_link("ups", " 1Z 99&x=1 ") == "https://www.ups.com/track?loc=en_US&tracknum=1Z%2099%26x%3D1"
    )


def test_unknown_carrier_or_empty_number_has_no_link() -> None:
    assert carrier_link("pony-express", "123") is None
    assert carrier_link("ups", "  ") is None


class _NoPage:
    name = "aggregator"

    def tracking_url(self, tracking_number: str) -> str | None:
        return None


class _OwnPage:
    name = "ups"

    def tracking_url(self, tracking_number: str) -> str | None:
        return f"https://carrier.example/{tracking_number}"


def test_registry_falls_back_to_the_carriers_public_page() -> None:
    registry = CarrierRegistry([_NoPage()], default="aggregator")  # type: ignore[list-item]
    assert registry.carrier_url("UPS", "1Z1") == "https://www.ups.com/track?loc=en_US&tracknum=1Z1"
    assert registry.carrier_url("aggregator", "1Z1") is None
    assert registry.carrier_url("unknown", "1Z1") is None


def test_registry_prefers_the_adapters_own_page() -> None:
    registry = CarrierRegistry([_OwnPage()])  # type: ignore[list-item]
    assert registry.carrier_url("ups", "1Z1") == "https://carrier.example/1Z1"
