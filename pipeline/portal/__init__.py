"""The download portal (``claimscreen serve``): sign-in, per-region scopes, audit log.

Light at import time: the CLI imports this package for its sub-commands; FastAPI and
SQLAlchemy load only when a portal command runs.
"""
