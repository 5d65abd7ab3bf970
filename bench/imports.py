"""CSV import rate: registry imports a national placement export of N rows.

`python -m bench.imports [N]` (MongoDB and Kafka from the environment, like the services; N
defaults to BENCH_IMPORT_ROWS, 2,000; issue 11's figure is `python -m bench.imports 100000`).
Writes N distinct, realistic rows (NIK, passport, names without digits from a small pool so some
are shared, dates of birth, 38 provinces, destinations weighted as placements go, agencies and
employers shared by many rows) as one CSV text, then imports it into a fresh namespace the way
`lindungi import FILE` does (`services.registry.imports.import_csv`, in chunks of
imports.CHUNK rows, no replica running: the DepartureRecorded events wait in the departures'
outbox). Reports rows/s overall and per tenth of the file, or per chunk when a chunk is larger
(does the rate fall as the collections grow?), the time the same rows take to parse and
validate alone (the CPU floor), and every database command the import sent, per row
(PyMongo command monitoring, as bench.commands). Then, unless BENCH_IMPORT_DRAIN=0, it starts a
registry replica and times its outbox relay publishing the import's events to Kafka, up to
BENCH_IMPORT_DRAIN_CAP seconds (default 120). Cleans up after itself. Nothing passes or fails.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
import sys
import time
import uuid
from datetime import date, timedelta

from pymongo import AsyncMongoClient

from bench.commands import Cpu, table, watch
from bench.seed import FIRST, LAST, _countries, _nik
from services.registry import domain, imports, store
from services.registry.app import create_app
from services.registry.models import DepartureIn
from shared.events.registry import Sector, SkillLevel
from shared.namespace import drop_namespace
from shared.outbox import PENDING
from shared.service import Runtime
from shared.settings import Settings

N = int(os.environ.get("BENCH_IMPORT_ROWS", "2000"))
DRAIN = os.environ.get("BENCH_IMPORT_DRAIN", "1") != "0"
DRAIN_CAP = float(os.environ.get("BENCH_IMPORT_DRAIN_CAP", "120"))
FIRST_DEPARTURE = date(2026, 1, 1)


def export(n: int, seed: int = 11) -> str:
    """A national placement export of n rows: one departure each of n distinct workers."""
    rng = random.Random(seed)
    countries, weights, _ = _countries()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=domain.CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for i in range(n):
        sex = rng.choice("FFM")
        dob = date(rng.randint(1972, 2004), rng.randint(1, 12), rng.randint(1, 28))
        country = rng.choices(countries, weights)[0]
        scheme = rng.choices(["agency", "g2g", "employer", "independent"], [70, 10, 10, 10])[0]
        agency = f"p3mi-{rng.randint(1, 400):03d}" if scheme == "agency" else ""
        departure = FIRST_DEPARTURE + timedelta(days=rng.randint(0, 330))
        writer.writerow(
            {
                # the row number in the last digits keeps every worker distinct
                "nik": _nik(rng, dob, sex)[:10] + f"{i:06d}",
                "passport_number": f"{'BCE'[i % 3]}{i:07d}",
                "full_name": f"{rng.choice(FIRST)} {rng.choice(FIRST)} {rng.choice(LAST)}",
                "date_of_birth": dob.isoformat(),
                "sex": sex,
                "home_province": rng.choice(domain.PROVINCES),
                "phone": f"+62 81{rng.randint(0, 9)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
                "next_of_kin_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "next_of_kin_relation": rng.choice(["mother", "father", "husband", "wife", "sister"]),
                "destination_country": country,
                "sector": rng.choice(list(Sector)).value,
                "skill_level": rng.choice(list(SkillLevel)).value,
                "scheme": scheme,
                "agency_id": agency,
                "agency_licence": f"KEP.{agency[5:]}/2024" if agency else "",
                "employer_name": f"Employer {country} {rng.randint(1, 3000)}",
                "contract_start": (departure + timedelta(days=10)).isoformat(),
                "contract_end": (departure + timedelta(days=740)).isoformat(),
                "departure_date": departure.isoformat(),
                "departure_port": "Soekarno-Hatta (CGK)",
                "status": rng.choices(["registered", "departed", "active_abroad"], [20, 20, 60])[0],
            }
        )
    return out.getvalue()


def parse_only(text: str) -> tuple[float, int]:
    """Seconds to read and validate every row (what the import does before any database call)."""
    t = time.perf_counter()
    _, rows = imports.read_csv(text)
    good = 0
    for _, row in rows:
        DepartureIn.model_validate(domain.row_to_input(row))
        good += 1
    return time.perf_counter() - t, good


async def import_rows(settings: Settings, text: str, n: int) -> None:
    tally = watch(settings.namespace)
    rt = Runtime("registry", settings=settings)  # as `lindungi import`: nothing started
    marks: list[tuple[int, float]] = []  # (rows done, when) at each tenth of the file crossed
    done, tenth = 0, max(n // 10, 1)

    def progress(k: int) -> None:  # called per chunk of rows (imports.CHUNK)
        nonlocal done
        before, done = done, done + k
        if done // tenth > before // tenth:
            marks.append((done, time.perf_counter()))

    try:
        await store.ensure_indexes(rt.db)
        tally.seconds.clear()
        cpu = Cpu()
        cpu.start()
        t0 = time.perf_counter()
        result = await imports.import_csv(rt=rt, text=text, progress=progress)
        wall = time.perf_counter() - t0
        used = cpu.stop()
    finally:
        await rt.mongo.close()
    report = result.as_dict()
    print(
        f"  import: {report['rows']} rows in {wall:.1f} s = {n / wall:.1f} rows/s "
        f"({report['created']} created, {report['updated']} updated, {report['rejected']} rejected)"
    )
    rates, last = [], (0, t0)
    for m in marks:
        rates.append((m[0] - last[0]) / (m[1] - last[1]))
        last = m
    # a chunk larger than a tenth of the file: the rate per chunk
    print(f"  rows/s per tenth of the file (or chunk): {', '.join(f'{r:.0f}' for r in rates)}")
    print(f"  {used}")
    print(f"  database commands of the import, per row ({n}):")
    table(tally, n, "row")


async def drain(settings: Settings) -> None:
    """Start a registry replica; time its relay publishing the import's events."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongodb_uri)
    db = client[settings.database("registry")]
    waiting0 = await db[store.DEPARTURES].count_documents({PENDING: True})
    app = create_app(settings)
    relay = app.state.runtime.relay
    publish, sent = relay.publish, 0

    async def counted(*args: object) -> None:  # the relay adds to its own count only after a sweep
        nonlocal sent
        await publish(*args)
        sent += 1

    relay.publish = counted
    cpu = Cpu()
    cpu.start()
    t0 = time.perf_counter()
    try:
        async with app.router.lifespan_context(app):
            # events counted as they go out: counting the pending documents would decode them all
            for _ in range(int(DRAIN_CAP / 0.5)):
                if sent >= waiting0:
                    break
                await asyncio.sleep(0.5)
            wall = time.perf_counter() - t0
            used = cpu.stop()
        waiting = await db[store.DEPARTURES].count_documents({PENDING: True})
    finally:
        await client.close()
    capped = f"; stopped at the {DRAIN_CAP:.0f} s cap" if waiting else ""
    print(
        f"  relay: {sent} of {waiting0} departures' events published in {wall:.1f} s"
        f" ({sent / wall:.1f}/s; one replica{capped})"
    )
    print(f"  relay {used}")


async def run(n: int) -> None:
    settings = Settings().model_copy(update={"namespace": f"benchimp{uuid.uuid4().hex[:6]}_"})
    t = time.perf_counter()
    text = export(n)
    made = time.perf_counter() - t
    print(f"registry: CSV import of {n} rows ({len(text) / 1e6:.1f} MB written in {made:.1f} s)")
    parse_s, good = parse_only(text)
    print(f"  parse and validate alone: {good} rows in {parse_s:.1f} s = {good / parse_s:.0f} rows/s")
    try:
        await import_rows(settings, text, n)
        if DRAIN:
            await drain(settings)
    finally:
        await drop_namespace(settings)


def main() -> None:
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else N))


if __name__ == "__main__":
    main()
