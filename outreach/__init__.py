"""The outreach orchestrator: see docs/architecture.md for its packages and layers."""
