"""polytask: multi-task learning, end to end."""
