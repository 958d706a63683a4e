"""Dispatch: sending the day's planned contacts exactly once, and the providers' callbacks."""
