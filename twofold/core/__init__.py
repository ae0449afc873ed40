"""Framework-free security services: nothing here imports FastAPI."""
