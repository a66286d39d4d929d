"""The jinja2 environment every customer-facing template renders in: emails, texts and pages.

One environment per locale, with that locale's gettext catalog installed (`{% trans %}`, `_()`,
`ngettext`, `pgettext`). HTML templates are autoescaped; a missing variable fails loudly
(`StrictUndefined`) rather than sending or showing something half empty.
"""

import importlib.util
from functools import cache
from pathlib import Path

import jinja2

import ordertrack
from ordertrack.locales.translations import translations


def template_dirs() -> list[str]:
    """The repo's `templates/` beside the package (editable install), else the `templates` namespace package.

    The namespace path is read from its spec: `importlib.resources.files("templates")` raises
    NotADirectoryError on Python 3.11 once an editable install adds its path hook to that path.
    """
    beside_package = Path(ordertrack.__file__).resolve().parent.parent / "templates"
    if beside_package.is_dir():
        return [str(beside_package)]
    spec = importlib.util.find_spec("templates")
    locations = (spec.submodule_search_locations or []) if spec else []
    return [location for location in dict.fromkeys(locations) if Path(location).is_dir()]


@cache
def environment(locale: str) -> jinja2.Environment:
    """The templates speaking `locale`, a supported locale (see `ordertrack.locales.resolve_locale`)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dirs()),
        auto_reload=False,  # templates ship with the release: no stat() per render
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    # The i18n extension adds this method; `newstyle` escapes the %(name)s values in HTML.
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env
