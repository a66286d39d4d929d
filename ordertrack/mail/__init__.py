"""Customer messages: email and SMS texts rendered per kind and locale (gettext catalogs under
`ordertrack/locales/`, shared with the pages), MIME composition, SMTP delivery and a dev sink.

Import the submodules directly; only `sink` needs aiosmtpd, so the worker never loads it.
"""
