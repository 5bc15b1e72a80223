"""``stblab web``: serve the web app, manage its accounts.

Example::

    stblab web adduser alice --role warranty          # password prompted twice, stored as argon2id
    stblab web --db reports/rma.sqlite --host 0.0.0.0 --port 8080
    stblab web users
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

app = typer.Typer(add_completion=False, help="The web app: cases, faults, runs, audit log, JSON API.")
EXIT_USAGE = 4


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    db: str | None = typer.Option(None, "--db", "--rma-db", help="RMA database URL or SQLite path"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8080, "--port", help="TCP port"),
    rigs: Path = typer.Option(Path("rigs/warranty.yaml"), "--rigs", help="rig file of the warranty bench"),
    artifacts: Path | None = typer.Option(None, "--artifacts", help="artifact store (default beside the database)"),
    emulate: str = typer.Option("auto", "--emulate", help="auto|always|never: checks start emulated rigs"),
    secure_cookies: bool = typer.Option(False, "--secure-cookies", help="mark cookies Secure (behind HTTPS)"),
) -> None:
    """Serve the web app (the default command)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"db": db}
        return
    import uvicorn

    from lab.web.app import WebConfig, create_app

    web = create_app(
        WebConfig(db=db, rigs=rigs, artifact_root=artifacts, emulate=emulate, secure_cookies=secure_cookies)
    )
    from lab.rma.db import display_url

    typer.echo(f"stblab web: {display_url(web.state.store.url)} on http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(web, host=host, port=port, log_level="info", access_log=True)


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@app.command()
def adduser(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="login name"),
    role: str = typer.Option(..., "--role", help="viewer, triage, warranty or admin"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
) -> None:
    """Create an account (the password is prompted, never an argument)."""
    from lab.rma import RmaStore
    from lab.web.accounts import add_user

    password = _password(password_stdin)
    try:
        with RmaStore.open((ctx.obj or {}).get("db")) as store, store.session() as s, s.begin():
            user = add_user(s, name, role, password)
    except ValueError as exc:
        print(f"stblab web adduser: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"user {user.name} ({user.role}) added")


@app.command()
def passwd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="login name"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from standard input"),
) -> None:
    """Set a new password (every session of that user ends)."""
    from lab.rma import RmaStore
    from lab.web.accounts import set_password

    password = _password(password_stdin)
    try:
        with RmaStore.open((ctx.obj or {}).get("db")) as store, store.session() as s, s.begin():
            set_password(s, name, password)
    except ValueError as exc:
        print(f"stblab web passwd: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(f"password of {name} changed")


@app.command()
def users(ctx: typer.Context) -> None:
    """List the accounts and their roles."""
    from lab.rma import RmaStore
    from lab.web.accounts import list_users

    with RmaStore.open((ctx.obj or {}).get("db")) as store, store.session() as s:
        for u in list_users(s):
            typer.echo("\t".join([str(u["name"]), str(u["role"])] + (["disabled"] if u["disabled"] else [])))
