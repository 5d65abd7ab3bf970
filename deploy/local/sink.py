"""`make run`'s notification sink: an SMTP server and a webhook receiver that keep what they get.

Escalation's development channel file (services/escalation/rules/channels.yaml) sends email to
127.0.0.1:8025 and partners' webhooks to 127.0.0.1:8026. Each message is printed on one line
and kept under .cache/mail/ (emails as .eml, webhooks as .json with their headers), so that a
developer sees what would have reached people. Run alone: `python -m deploy.local.sink`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[2]
MAIL = ROOT / ".cache" / "mail"
SMTP_PORT = int(os.environ.get("LINDUNGI_SINK_SMTP_PORT", "8025"))
HOOK_PORT = int(os.environ.get("LINDUNGI_SINK_WEBHOOK_PORT", "8026"))


def _name(kind: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{time.monotonic_ns() % 10**9:09d}.{kind}"


class MailSink:
    """Keeps every message it is given (aiosmtpd handler)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        path = MAIL / _name("eml")
        path.write_bytes(envelope.content)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        print(f"[sink] mail to {', '.join(envelope.rcpt_tos)}: {msg['Subject']}  ({path})", flush=True)
        return "250 OK"


async def hooks(scope: Any, receive: Any, send: Any) -> None:
    """Keeps every webhook request it is given and answers 200 (an ASGI app)."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        part = await receive()
        body += part.get("body", b"")
        if not part.get("more_body"):
            break
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    path = MAIL / "hooks" / _name("json")
    path.write_text(json.dumps({"path": scope["path"], "headers": headers, "body": body.decode()}, indent=2))
    print(f"[sink] webhook {scope['method']} {scope['path']}  ({path})", flush=True)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def main() -> None:
    """Serve both until SIGINT or SIGTERM."""
    (MAIL / "hooks").mkdir(parents=True, exist_ok=True)
    smtp = Controller(MailSink(), hostname="127.0.0.1", port=SMTP_PORT)
    smtp.start()
    server = uvicorn.Server(
        uvicorn.Config(hooks, host="127.0.0.1", port=HOOK_PORT, log_level="warning", lifespan="off")
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    print(
        f"[sink] SMTP on 127.0.0.1:{SMTP_PORT}, webhooks on 127.0.0.1:{HOOK_PORT}, kept in {MAIL}", flush=True
    )
    try:
        await server.serve()
    finally:
        smtp.stop()


if __name__ == "__main__":
    asyncio.run(main())
