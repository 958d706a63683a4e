"""The kernel: concepts every other package shares (clock, settings, config files, identity, account facts, zones)."""
