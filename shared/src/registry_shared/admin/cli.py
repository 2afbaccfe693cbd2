"""`registry-admin`: every command prints one JSON object on stdout and exits 0, or a clear message on
stderr and exits non-zero. It reads the same settings (environment variables) as the services."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from ..errors import DomainError
from ..settings import CommonSettings
from . import governance
from .commands import AdminError, Commands

ROLES = ("guest", "reporter", "developer", "maintainer", "owner")
VISIBILITIES = ("public", "internal", "private")


def _expiry(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use YYYY-MM-DD)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("expected on or off")
    return value == "on"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="registry-admin", description="Administer the package registry.")
    top = parser.add_subparsers(dest="area", required=True)

    user = top.add_parser("user").add_subparsers(dest="action", required=True)
    p = user.add_parser("create")
    p.add_argument("--username", required=True)
    p.add_argument("--admin", action="store_true")

    group = top.add_parser("group").add_subparsers(dest="action", required=True)
    p = group.add_parser("create")
    p.add_argument("--path", required=True)
    p.add_argument("--name")
    p.add_argument("--visibility", choices=VISIBILITIES, default="private")

    project = top.add_parser("project").add_subparsers(dest="action", required=True)
    p = project.add_parser("create")
    p.add_argument("--path", required=True)
    p.add_argument("--name")
    p.add_argument("--visibility", choices=VISIBILITIES, default="private")
    p.add_argument("--registry-access", choices=("enabled", "disabled", "public"), default="enabled")

    member = top.add_parser("member").add_subparsers(dest="action", required=True)
    for action in ("add", "remove"):
        p = member.add_parser(action)
        p.add_argument("--user", required=True)
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--group")
        target.add_argument("--project")
        if action == "add":
            p.add_argument("--role", choices=ROLES, required=True)

    token = top.add_parser("token").add_subparsers(dest="action", required=True)
    p = token.add_parser("create")
    p.add_argument("--user", required=True)
    p.add_argument("--scopes", required=True)
    p.add_argument("--expires-at", type=_expiry)
    p.add_argument("--name", default="registry-admin")
    token.add_parser("revoke").add_argument("--id", type=int, required=True)

    deploy = top.add_parser("deploy-token").add_subparsers(dest="action", required=True)
    p = deploy.add_parser("create")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--project")
    target.add_argument("--group")
    p.add_argument("--username", required=True)
    p.add_argument("--scopes", required=True)
    p.add_argument("--expires-at", type=_expiry)
    deploy.add_parser("revoke").add_argument("--id", type=int, required=True)

    job = top.add_parser("job").add_subparsers(dest="action", required=True)
    p = job.add_parser("start")
    p.add_argument("--project", required=True)
    p.add_argument("--user", required=True)
    job.add_parser("finish").add_argument("--id", type=int, required=True)

    scope = top.add_parser("job-token-scope").add_subparsers(dest="action", required=True)
    p = scope.add_parser("add")
    p.add_argument("--project", required=True)
    p.add_argument("--allow", required=True)

    settings = top.add_parser("settings").add_subparsers(dest="action", required=True)
    p = settings.add_parser("set")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--group")
    target.add_argument("--project")
    p.add_argument("--forwarding", type=_on_off)
    p.add_argument("--lock", action="store_true")
    p.add_argument("--allow-guest-to-read-packages", type=_on_off)
    settings.add_parser("show")

    policy = top.add_parser("policy").add_subparsers(dest="action", required=True)
    p = policy.add_parser("set", help="replace a level's supply-chain policy (SPEC §9)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--instance", action="store_true")
    target.add_argument("--group")
    target.add_argument("--project")
    p.add_argument("--json", required=True, dest="document", help="the whole policy document")
    p = policy.add_parser("show")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--group")
    target.add_argument("--project")
    p = policy.add_parser("import-osv", help="OSV advisories (files or folders) into blocked rules")
    p.add_argument("paths", nargs="+", metavar="PATH")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--group")
    target.add_argument("--project")
    governance.add_parsers(top)  # package yank/unyank, protection, audit, hook, cleanup (SPEC §10)
    return parser


async def run(args: argparse.Namespace, settings: CommonSettings) -> dict[str, Any]:
    commands = await Commands.open(settings)
    try:
        handler: Callable[[argparse.Namespace], Awaitable[dict[str, Any]]] = getattr(
            commands, f"{args.area.replace('-', '_')}_{args.action.replace('-', '_')}")
        return await handler(args)
    finally:
        await commands.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The use cases it calls log; stdout carries only the command's JSON answer.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:
        result = asyncio.run(run(args, CommonSettings()))
    except AdminError as exc:
        print(f"registry-admin: {exc}", file=sys.stderr)
        return 1
    except DomainError as exc:  # a use case refused (404, 422, 400): the API's message
        print(f"registry-admin: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a clear one-line message instead of a traceback
        print(f"registry-admin: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
