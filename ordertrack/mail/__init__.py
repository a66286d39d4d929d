"""Customer email: templates rendered per message kind, MIME composition, SMTP delivery and a dev sink.

Import the submodules directly; only `sink` needs aiosmtpd, so the worker never loads it.
"""
