"""`medarchive serve` and `medarchive user ...`."""

COMMANDS: list = []
