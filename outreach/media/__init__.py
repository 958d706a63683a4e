"""Our own media: agent calls, letters, agency placement and legal referral, each with its hooks."""
