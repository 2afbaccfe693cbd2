"""Run index-api: `python -m index_api` (settings from the environment, JSON logs on stdout)."""
from __future__ import annotations

from registry_shared.web.serve import serve

from .app import create_app
from .settings import IndexSettings


def main() -> None:
    serve("index-api", IndexSettings, create_app)


if __name__ == "__main__":
    main()
