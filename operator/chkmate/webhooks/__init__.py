"""The GitHub webhook receiver (aiohttp, on the operator's event loop).

:mod:`~chkmate.webhooks.events` turns deliveries into marks (pure); :mod:`~chkmate.webhooks.receiver` serves
HTTP, verifies deliveries and hands the marks to the operator's callback (I/O).
"""
