"""The domain core: accounts, ladder config, planner, dispatcher, ledger and CLI."""
