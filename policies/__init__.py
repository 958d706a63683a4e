"""The policy gate: pure functions from facts to a verdict (send, defer or block) with reasons."""
