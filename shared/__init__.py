"""Mechanisms every Lindungi service shares: settings, envelope, topics, outbox, consumption."""
