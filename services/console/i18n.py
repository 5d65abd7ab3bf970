"""Message catalogs (Bahasa Indonesia, English) compiled at start, and dates in the reader's time zone."""

from __future__ import annotations

import datetime as dt_
import io
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

TRANSLATIONS = Path(__file__).parent / "translations"
LOCALES = ("id", "en")
DOMAIN = "messages"


NONE = "\u2013"  # an en dash where a value is missing


def N_(message: str) -> str:
    """Mark a string for the catalog; it is translated where it is shown."""
    return message


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> Translations:
    """A locale's catalog, compiled from its .po file in memory (no compiled file is committed)."""
    with po_path(locale).open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def locale_of(value: str | None, default: str) -> str:
    """The reader's locale: the chosen one if we have it, else the default."""
    return value if value in LOCALES else default


def zone_of(name: str | None, default: str) -> ZoneInfo:
    """The reader's time zone (an IANA name the browser reported), else the default."""
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def parse_time(value: Any) -> datetime | None:
    """A datetime from a service's JSON (ISO 8601; naive means UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


class Formats:
    """Dates and durations for one reader: their locale and time zone, with the offset visible."""

    def __init__(self, locale: str, zone: ZoneInfo, now: datetime) -> None:
        self.locale = locale
        self.zone = zone
        self.now = now

    def datetime(self, value: Any) -> str:
        dt = parse_time(value)
        if dt is None:
            return NONE
        return format_datetime(dt, "d MMM y, HH:mm xxx", tzinfo=self.zone, locale=self.locale)

    def as_sent(self, value: Any) -> str:
        """A time as its sender wrote it (a mission's +09:00 stays +09:00), offset visible."""
        dt = parse_time(value)
        if dt is None:
            return NONE
        return format_datetime(dt, "d MMM y, HH:mm xxx", tzinfo=dt.tzinfo, locale=self.locale)

    def kept_offset(self, value: Any) -> bool:
        """A time its sender wrote with an offset that the service kept as written (a string such
        as a repatriation step's `arrival_at`): shown as sent; the services' own instants (UTC)
        are shown in the reader's zone."""
        if not isinstance(value, str) or "T" not in value:
            return False
        try:
            return dt_.datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
        except ValueError:
            return False

    def iso(self, value: Any) -> str:
        dt = parse_time(value)
        return dt.isoformat() if dt else ""

    def until(self, value: Any) -> str:
        """Time left to a deadline ('in 3 hours'), or how long ago it passed."""
        dt = parse_time(value)
        if dt is None:
            return NONE
        delta: timedelta = dt - self.now
        return format_timedelta(delta, add_direction=True, locale=self.locale, threshold=1.5)

    def overdue(self, value: Any) -> bool:
        dt = parse_time(value)
        return dt is not None and dt < self.now

    def zone_label(self) -> str:
        """The reader's zone and its offset now, e.g. 'Asia/Seoul (+09:00)'."""
        offset = format_datetime(self.now, "xxx", tzinfo=self.zone, locale=self.locale)
        return f"{self.zone.key} ({offset})"

    def local_input(self, value: dt_.datetime) -> str:
        """A datetime as a datetime-local input's value in the reader's zone."""
        return value.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")
