"""The FastAPI front end: pages, the /api/v1 JSON API and security middleware."""
