"""Planning: the ladder and its versions, the messages, and the day's plan through the policy gate."""
