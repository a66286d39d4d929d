"""`ordertrack mail preview`: what people editing templates run, as a real process."""

import subprocess
import sys
from pathlib import Path

import pytest

ORDERTRACK = str(Path(sys.executable).parent / "ordertrack")


def preview(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ORDERTRACK, "mail", "preview", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_text_preview_starts_with_the_localized_subject() -> None:
    shown = preview("delayed", "--locale", "ko", "--format", "text")
    assert shown.returncode == 0, shown.stderr
    subject, _, body = shown.stdout.partition("\n\n")
    assert subject.startswith("Subject: ") and "지연" in subject
    assert "/t/" in body


@pytest.mark.parametrize("locale", ["pt-BR", "es", "ca"])
def test_html_preview_is_a_whole_page_in_the_language(locale: str) -> None:
    shown = preview("available_for_pickup", "--locale", locale, "--format", "html")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.lstrip().startswith("<!DOCTYPE html>") and f'lang="{locale}"' in shown.stdout


def test_a_kind_never_texted_is_refused_in_one_line() -> None:
    shown = preview("review_request", "--format", "sms")
    assert shown.returncode == 2 and shown.stdout == ""
    assert shown.stderr.strip().count("\n") == 0 and "never sent as a text" in shown.stderr


def test_an_unknown_locale_previews_in_english() -> None:
    shown = preview("lost", "--locale", "xx-YY", "--format", "sms")
    assert shown.returncode == 0 and "lost" in shown.stdout.lower()
