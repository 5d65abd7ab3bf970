"""`lindungi`: the operators' command line. Endpoints come from the same settings as the services
(KAFKA_BOOTSTRAP_SERVERS, MONGODB_URI, LINDUNGI_NAMESPACE)."""

from __future__ import annotations

import asyncio
import getpass

import typer
from rich.console import Console
from rich.table import Table

from deploy.cli import demo, dlq, imports, pii, replay, rules, status
from shared.settings import Settings

app = typer.Typer(help="Operate Lindungi: status, imports, rules, dead letters.", no_args_is_help=True)
app.command("status")(status.status)
app.command("import")(imports.import_file)
app.add_typer(rules.app, name="rules")
app.command("replay")(replay.replay)
app.command("demo")(demo.demo)
dlq_app = typer.Typer(help="Dead letters: list, show, and re-drive them after a fix.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(pii.app, name="pii")
out = Console()


def _topic(name: str) -> dlq.Topic:
    try:
        return dlq.topic_named(name)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None


@dlq_app.command("list")
def dlq_list(
    topic: str = typer.Argument(None, help="A catalog topic, e.g. intake.incidents.v1; none: counts"),
) -> None:
    """Dead letters of one topic with their reasons, or how many each topic has."""
    settings = Settings()
    if topic is None:
        table = Table("topic", "dead letters")
        for name, n in asyncio.run(dlq.counts(settings)).items():
            table.add_row(name, str(n))
        out.print(table)
        return
    letters = asyncio.run(dlq.read(settings, _topic(topic)))
    table = Table("ref", "kind", "group", "failed at", "bytes", "error", title=f"{topic}.dlq")
    for letter in letters:
        table.add_row(
            letter.ref,
            letter.kind,
            letter.headers.get("dlq-consumer-group", ""),
            letter.headers.get("dlq-failed-at", ""),
            str(len(letter.value)),
            letter.error[:120],
        )
    out.print(table)


@dlq_app.command("show")
def dlq_show(topic: str, ref: str = typer.Argument(help="partition:offset, as `list` shows it")) -> None:
    """One dead letter: its headers and its body (identifiers masked)."""
    letters = {d.ref: d for d in asyncio.run(dlq.read(Settings(), _topic(topic)))}
    letter = letters.get(ref)
    if letter is None:
        out.print(f"[red]no dead letter {ref} in {topic}.dlq[/red]")
        raise typer.Exit(1)
    for name, value in sorted(letter.headers.items()):
        out.print(f"[bold]{name}[/bold]: {value}")
    out.print(letter.preview(), markup=False)


@dlq_app.command("replay")
def dlq_replay(
    topic: str,
    refs: list[str] = typer.Argument(None, help="partition:offset of each letter to re-drive"),
    all_: bool = typer.Option(False, "--all", help="re-drive every dead letter of the topic"),
) -> None:
    """Send dead letters back to the topic they came from (after a fix), each at most once."""
    if not refs and not all_:
        raise typer.BadParameter("name the letters (partition:offset) or pass --all")
    report = asyncio.run(
        dlq.replay(Settings(), _topic(topic), None if all_ else refs, operator=getpass.getuser())
    )
    out.print(f"replayed {len(report.replayed)}: {' '.join(report.replayed) or '-'}")
    if report.already:
        out.print(f"already replayed before, not again: {' '.join(report.already)}")
    if report.missing:
        out.print(f"[red]no such dead letter: {' '.join(report.missing)}[/red]")
        raise typer.Exit(1)


def main() -> None:
    app()
