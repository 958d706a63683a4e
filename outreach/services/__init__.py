"""Services: the use cases every entry point calls (the day's steps, configuration checks)."""
