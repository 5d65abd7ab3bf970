"""casework: protection cases, queues, assignments, notes and the timeline, for the central desk."""
