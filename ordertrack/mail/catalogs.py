"""Keep the gettext catalogs (`ordertrack/locales/`) in step with the templates and code.

    python -m ordertrack.mail.catalogs extract  # templates -> ordertrack/locales/messages.pot
    python -m ordertrack.mail.catalogs update   # extract, then merge the .pot into every locale's .po
    python -m ordertrack.mail.catalogs check    # exit 1, listing what is stale, missing, fuzzy or obsolete

Translators edit only the `.po` files; `ordertrack.locales.translations` compiles them in memory, so
there is nothing to build. `babel.cfg` at the repository root says which files hold messages, so
this runs from a source checkout.
"""

import argparse
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

import ordertrack
from ordertrack.locales import SUPPORTED_LOCALES
from ordertrack.locales.translations import CATALOG_DIR, SOURCE_LOCALE, catalog_path, gettext_name

ROOT = Path(ordertrack.__file__).resolve().parent.parent
TEMPLATE = CATALOG_DIR / "messages.pot"
TRANSLATED_LOCALES = tuple(locale for locale in SUPPORTED_LOCALES if locale != SOURCE_LOCALE)
_COMMANDS = "python -m ordertrack.mail.catalogs"


def _new_catalog(locale: str | None = None) -> Catalog:
    """An empty template (no locale) or locale catalog, with a header that says how it is maintained."""
    language = Locale.parse(locale, sep="-").english_name if locale else None
    if language:
        comment = (
            f"# {language} translations of the ordertrack customer messages.\n"
            f"# `{_COMMANDS} update` merges new messages in; translate the msgstr lines.\n#"
        )
    else:
        comment = (
            "# The ordertrack customer-facing words (emails, texts and pages).\n"
            f"# Written by `{_COMMANDS} extract`: do not edit.\n#"
        )
    return Catalog(
        locale=gettext_name(locale) if locale else None,
        header_comment=comment,
        project="ordertrack",
        version=metadata.version("ordertrack"),
        language_team=language,
        charset="utf-8",
        fuzzy=False,
    )


def extract(root: Path = ROOT) -> Catalog:
    """Every message the files mapped in `root/babel.cfg` use, as a template catalog."""
    with (root / "babel.cfg").open() as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    # Walk only the folders the mapping names (not .venv, var/ or the tests).
    tops = {pattern.split("/")[0] for pattern, _ in method_map}

    def wanted(dirpath: str) -> bool:
        relative = Path(dirpath).relative_to(root)
        return relative.parts[0] in tops and not relative.name.startswith((".", "_"))

    catalog = _new_catalog()
    for filename, lineno, message, comments, context in extract_from_dir(
        root, method_map, options_map, directory_filter=wanted
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=gettext_name(locale) if locale else None)


def write_catalog(path: Path, catalog: Catalog) -> None:
    """Line numbers are left out of the references, so moving a line does not change the catalogs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as po:
        write_po(po, catalog, include_lineno=False)


def _entries(catalog: Catalog) -> set[tuple[str, str | None, tuple[str, ...]]]:
    """What a template catalog says, headers and line numbers aside: ids, contexts and files."""
    return {
        (str(message.id), message.context, tuple(sorted({file for file, _ in message.locations})))
        for message in catalog
        if message.id
    }


def write_template(extracted: Catalog, path: Path = TEMPLATE) -> bool:
    """Write the .pot when its messages changed (so its creation date moves only then); True if written."""
    if path.exists() and _entries(read_catalog(path)) == _entries(extracted):
        return False
    write_catalog(path, extracted)
    return True


def update_locale(template: Catalog, locale: str) -> None:
    """Merge the template into the locale's .po: translations stay, new ids come in empty (or fuzzy
    when an old translation is close), ids no longer used become obsolete."""
    path = catalog_path(locale)
    catalog = read_catalog(path, locale) if path.exists() else _new_catalog(locale)
    catalog.update(template)
    write_catalog(path, catalog)


def _filled(string: str | Sequence[str] | None) -> bool:
    """A translation counts when every form (singular and plurals) is non-empty."""
    return all(string) if isinstance(string, tuple | list) else bool(string)


# A message is its id within its context: one English word may be translated twice, apart.
_Key = tuple[str, str | None]


def _key(message: Message) -> _Key:
    return str(message.id), message.context


def _ids(keys: Iterable[_Key]) -> str:
    ordered = sorted(keys, key=lambda key: (key[0], key[1] or ""))
    return "; ".join(repr(id_) + (f" ({context})" if context else "") for id_, context in ordered)


def problems() -> dict[str, list[str]]:
    """What stops the catalogs from covering the templates: per file ("messages.pot" or a locale)."""
    extracted = extract()
    wanted = {_key(message) for message in extracted if message.id}
    found: dict[str, list[str]] = {}
    if not TEMPLATE.exists() or _entries(read_catalog(TEMPLATE)) != _entries(extracted):
        found["messages.pot"] = ["out of date with the templates: run extract"]
    for locale in TRANSLATED_LOCALES:
        path = catalog_path(locale)
        if not path.exists():
            found[locale] = [f"{path} is missing: run update"]
            continue
        catalog = read_catalog(path, locale)
        translated = {_key(message): message for message in catalog if message.id}
        issues = []
        if missing := wanted - {key for key, message in translated.items() if _filled(message.string)}:
            issues.append(f"untranslated: {_ids(missing)}")
        if fuzzy := {key for key, message in translated.items() if message.fuzzy}:
            issues.append(f"fuzzy: {_ids(fuzzy)}")
        if unused := set(translated) - wanted:
            issues.append(f"not in the templates (run update): {_ids(unused)}")
        if catalog.obsolete:
            issues.append(f"obsolete (delete the #~ entries): {_ids(map(_key, catalog.obsolete.values()))}")
        issues.extend(f"{message.id!r}: {error}" for message, errors in catalog.check() for error in errors)
        if issues:
            found[locale] = issues
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=_COMMANDS, description="Maintain the customer message catalogs.")
    parser.add_argument("command", choices=("extract", "update", "check"))
    command = parser.parse_args(argv).command
    if command == "check":
        found = problems()
        for name, issues in found.items():
            print(f"{name}:", *(f"  {issue}" for issue in issues), sep="\n")
        print("catalogs: " + ("incomplete" if found else "complete"))
        return 1 if found else 0
    extracted = extract()
    print(
        f"messages.pot: {len(extracted)} messages, "
        + ("written" if write_template(extracted) else "unchanged")
    )
    if command == "update":
        template = read_catalog(TEMPLATE)  # as written, so the .po files keep its creation date
        for locale in TRANSLATED_LOCALES:
            update_locale(template, locale)
            print(f"{catalog_path(locale).relative_to(ROOT)}: updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
