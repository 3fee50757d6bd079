"""The clerks' web interface: search, view, review and release in a browser."""
