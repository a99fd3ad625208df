"""The recommendation service (``mmgef serve``): catalogue, durable store, FastAPI app."""
