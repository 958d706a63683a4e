"""Entry points: the CLI, the console, the webhooks and the agent API."""
