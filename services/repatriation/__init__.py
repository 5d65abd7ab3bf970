"""repatriation service (see its issue)."""
