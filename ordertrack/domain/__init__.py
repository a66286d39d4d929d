"""The pure order domain: models, statuses, the state machine and the timing policy.

Nothing here imports Temporal, SQLAlchemy, httpx or jinja2, so every rule can be unit-tested
on its own and every other layer may import it.
"""
