"""Carrier adapters: each carrier's tracking API mapped to the domain's `TrackingSnapshot`.

`base` holds the plugin interface and typed errors, `registry` picks an adapter by carrier name,
`simulated` is the adapter for the bundled simulator (`simulator`, playing back `journeys`).
"""
