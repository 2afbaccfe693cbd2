"""Run the web interface: `python -m registry_web` (settings from the environment, JSON logs on stdout)."""
from __future__ import annotations

from registry_shared.web.serve import serve

from .app import create_app
from .settings import WebSettings


def main() -> None:
    serve("web", WebSettings, create_app)


if __name__ == "__main__":
    main()
