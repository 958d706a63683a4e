"""Channel adapters: one module per provider or medium, behind the protocol in ``base``."""
