"""Storage: the SQLAlchemy models, engines and migrations, and the bulk-write helpers."""
