"""Structured JSON logs. Personal data never belongs in a log line; a filter masks what slips in."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# 16-digit NIKs and passport-shaped tokens (one or two letters then 6-8 digits).
_PII = re.compile(r"(?<!\d)\d{16}(?!\d)|\b[A-Z]{1,2}\d{6,8}\b")


def redact(text: str) -> str:
    """Mask NIK- and passport-shaped tokens."""
    return _PII.sub("[redacted]", text)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in ("event_id", "event_type", "topic", "case_id", "incident_id", "error"):
            if key in record.__dict__:
                entry[key] = redact(str(record.__dict__[key]))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


def configure(service: str, level: str = "INFO") -> None:
    """Send every logger's records to stderr as one JSON object a line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h.formatter, JsonFormatter):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("aiokafka", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
