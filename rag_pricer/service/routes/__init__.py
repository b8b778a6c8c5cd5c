"""The service's routes, one router per resource: estimates, strategies and LLMs, products,
health probes, and the web page."""
