"""escalation service (see its issue)."""
