"""Lindungi services: one package each, each with its own database."""
