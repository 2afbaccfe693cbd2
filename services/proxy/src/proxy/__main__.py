"""Run proxy: `python -m proxy` (settings from the environment, JSON logs on stdout)."""
from __future__ import annotations

from registry_shared.web.serve import serve

from .app import create_app
from .settings import ProxySettings


def main() -> None:
    serve("proxy", ProxySettings, create_app)


if __name__ == "__main__":
    main()
