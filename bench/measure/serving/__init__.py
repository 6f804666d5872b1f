"""Serving realism for the server-type scenarios: arrivals, request sizes, dynamic batching, latency breakdown."""
