"""A namespace's footprint (its databases and topics), and how to remove it.

Tests and benchmarks each run in a namespace of their own on a shared broker and database
(Settings.namespace prefixes topics, consumer groups and databases); this drops one afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient

from shared.mongo import connect
from shared.settings import Settings


async def drop_namespace(settings: Settings) -> None:
    """Drop every database and delete every topic of the settings' namespace (best effort)."""
    if not settings.namespace:
        raise ValueError("refusing to drop the unnamespaced (production) databases and topics")
    client = connect(settings)
    try:
        prefix = settings.database("")
        for name in await client.list_database_names():
            if name.startswith(prefix):
                await client.drop_database(name)
    finally:
        await client.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    with contextlib.suppress(Exception):  # best effort, and bounded: a cleanup never holds a run
        async with asyncio.timeout(60):
            await admin.start()
            mine = [t for t in await admin.list_topics() if t.startswith(settings.namespace)]
            if mine:
                await admin.delete_topics(mine)
    with contextlib.suppress(Exception):
        await admin.close()
