"""The GitHub webhook receiver (aiohttp, on the operator's event loop). Arrives with the webhooks issue."""
