"""How the SMTP connection is secured: explicit modes, safe defaults, and real TLS against a local server."""

import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from ordertrack.delivery import TransientDeliveryError
from ordertrack.mail.smtp import SmtpMailer, tls_mode
from ordertrack.settings import Settings
from tests.conftest import free_port, self_signed_certificate


@pytest.mark.parametrize(
    ("settings", "mode"),
    [
        ({"smtp_port": 465}, "implicit"),
        ({"smtp_port": 587, "smtp_host": "smtp.example.com"}, "starttls"),
        ({"smtp_port": 2525, "smtp_host": "smtp.example.com", "smtp_starttls": True}, "starttls"),
        ({"smtp_port": 1025, "smtp_host": "127.0.0.1"}, "none"),
        ({"smtp_port": 25, "smtp_host": "localhost"}, "none"),
        ({"smtp_port": 1025, "smtp_host": "mailpit", "smtp_tls": "none"}, "none"),
        ({"smtp_port": 2465, "smtp_host": "smtp.example.com", "smtp_tls": "implicit"}, "implicit"),
    ],
)
def test_tls_mode(settings: dict[str, object], mode: str) -> None:
    assert tls_mode(Settings.model_validate(settings)) == mode


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"smtp_port": 25, "smtp_host": "smtp.example.com"}, "plain text"),
        ({"smtp_port": 465, "smtp_starttls": True}, "speaks implicit TLS"),
        ({"smtp_port": 587, "smtp_starttls": True, "smtp_tls": "none"}, "keep one"),
    ],
)
def test_unsafe_or_contradictory_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SmtpMailer(Settings.model_validate(settings))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1; the mailer trusts it through SMTP_CA_FILE."""
    cert, key = self_signed_certificate("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert)
    key_path.write_bytes(key)
    return cert_path, key_path


class _Collect:
    def __init__(self) -> None:
        self.secure: list[bool] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.secure.append(
            server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        )
        return "250 OK"


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def starttls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[int, _Collect]]:
    """A server that refuses mail until the client has upgraded with STARTTLS."""
    handler, port = _Collect(), free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(certificate),
        require_starttls=True,
    )
    controller.start()
    yield port, handler
    controller.stop()


@pytest.fixture
def implicit_tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[int, _Collect]]:
    handler, port = _Collect(), free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, ssl_context=_server_context(certificate)
    )
    controller.start()
    yield port, handler
    controller.stop()


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "orders@example.com"
    message["To"] = "ana@example.com"
    message["Subject"] = "hello"
    message.set_content("hi")
    return message


async def test_starttls_upgrades_before_sending(
    starttls_server: tuple[int, _Collect], certificate: tuple[Path, Path]
) -> None:
    port, handler = starttls_server
    settings = Settings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_tls="starttls", smtp_ca_file=certificate[0]
    )
    await SmtpMailer(settings).send(_message())
    assert handler.secure == [True]


async def test_plain_text_is_refused_by_a_server_that_requires_starttls(
    starttls_server: tuple[int, _Collect],
) -> None:
    port, handler = starttls_server
    with pytest.raises(TransientDeliveryError):
        await SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")).send(_message())
    assert handler.secure == []


async def test_an_untrusted_certificate_is_not_accepted(starttls_server: tuple[int, _Collect]) -> None:
    port, handler = starttls_server
    with pytest.raises(TransientDeliveryError):
        await SmtpMailer(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_tls="starttls")).send(
            _message()
        )
    assert handler.secure == []


async def test_implicit_tls(
    implicit_tls_server: tuple[int, _Collect], certificate: tuple[Path, Path]
) -> None:
    port, handler = implicit_tls_server
    settings = Settings(
        smtp_host="127.0.0.1", smtp_port=port, smtp_tls="implicit", smtp_ca_file=certificate[0]
    )
    await SmtpMailer(settings).send(_message())
    assert handler.secure == [True]
