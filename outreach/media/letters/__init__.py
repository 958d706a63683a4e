"""Letters: the mail-house batches, notices and returned mail."""
