"""``twofold user``: add a practice member; break-glass reset of a member's 2FA."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from twofold.cli.common import console, fail, find_practice, load_services
from twofold.context import RequestContext
from twofold.errors import TwofoldError

app = typer.Typer(help="Users (practice members).", no_args_is_help=True)


@app.command("add")
def add(
    practice: Annotated[str, typer.Option(help="Name of the practice.")],
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    role: Annotated[str, typer.Option(help="admin, provider or staff.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Add a member to a practice. The password is read from standard input, never from arguments."""
    if not password_stdin:
        fail(
            "Pass --password-stdin and give the password on standard input "
            "(it must not appear in arguments or history).",
            2,
        )
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("No password on standard input.", 2)
    services = load_services()
    found = find_practice(services, practice)
    try:
        user = services.accounts.add_member(
            practice_id=found.id,
            email=email,
            name=name,
            role=role,
            password=password,
            context=RequestContext.system(),
        )
    except TwofoldError as exc:
        fail(exc.message)
    console.print(f"Added {user.email} ({user.role}) to {found.name}.", markup=False)
    services.close()


@app.command("reset-2fa")
def reset_2fa(
    email: Annotated[str, typer.Argument(help="The member's sign-in email.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit log and told to the member).")],
) -> None:
    """Break-glass: reset a member's two-factor authentication (for example a practice's only admin).

    Removes every method, ends sessions and remembered browsers, emails the member and
    has them set up 2FA at their next sign-in. Audited like an admin reset (via: cli).
    """
    services = load_services()
    try:
        member = services.resets.break_glass_reset(email=email, reason=reason, context=RequestContext.system())
    except TwofoldError as exc:
        fail(exc.message)
    console.print(
        f"Reset two-factor authentication for {member.email}. They were signed out and emailed, "
        "and will set it up again at their next sign-in.",
        markup=False,
    )
    services.close()
