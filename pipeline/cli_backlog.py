"""`medarchive backlog`."""

COMMANDS: list = []
