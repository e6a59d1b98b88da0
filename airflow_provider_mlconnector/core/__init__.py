"""Shared machinery every hook uses: HTTP client, paginators, throttles, secret handling."""
