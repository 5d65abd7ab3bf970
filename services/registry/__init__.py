"""registry service (see its issue)."""
