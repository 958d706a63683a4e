"""Agent calls: the call queue, claims and dispositions."""
