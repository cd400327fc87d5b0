"""Pure logic: decisions, summaries, hashes, renderings. No I/O, no kopf, no clients.

Functions here take values and return values; they are table-tested in ``tests/unit``.
"""
