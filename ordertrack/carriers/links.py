"""Links to carriers' own public tracking pages, for customer emails and the tracking page.

An order's carrier may be a real carrier tracked through an aggregator (EasyPost, AfterShip); the
customer is better served by the carrier's own page than by the aggregator's. Names and the
aggregators' codes (EasyPost's `DHLExpress`, AfterShip's `brazil-correios`, `portugal-ctt`,
`korea-post`) are matched as `ordertrack.carriers.known` matches them.
"""

import re
from urllib.parse import quote

from ordertrack.carriers.known import carrier_key

# Canonical carrier key -> URL template; `{number}` is the URL-encoded tracking number.
TEMPLATES: dict[str, str] = {
    "ups": "https://www.ups.com/track?loc=en_US&tracknum={number}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={number}",
    "dhl": "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id={number}",
    "correios": "https://rastreamento.correios.com.br/app/index.php?objetos={number}",
    "ctt": "https://www.ctt.pt/feapl_2/app/open/objectSearch/objectSearch.jspx?objects={number}",
    # Korea Post: domestic registered mail (13 digits); international items use `_KOREA_POST_INTL`.
    "koreapost": "https://service.epost.go.kr/trace.RetrieveDomRigiTraceList.comm?sid1={number}",
}

# Korea Post's page for international (UPU S10, e.g. `EE123456789KR`) items and EMS.
_KOREA_POST_INTL = "https://service.epost.go.kr/trace.RetrieveEmsRigiTraceList.comm?POST_CODE={number}"
_UPU_S10 = re.compile(r"^[A-Z]{2}[0-9]{9}[A-Z]{2}$")


def carrier_link(carrier: str, number: str) -> str | None:
    """The carrier's public tracking URL for `number`, or None for a carrier without a known page."""
    key, number = carrier_key(carrier), number.strip()
    template = TEMPLATES.get(key) if key else None
    if template is None or not number:
        return None
    if key == "koreapost" and _UPU_S10.match(number.upper()):
        template = _KOREA_POST_INTL
    return template.format(number=quote(number, safe=""))
