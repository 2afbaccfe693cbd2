"""Run metadata-worker: `python -m metadata_worker` (settings from the environment, JSON logs on stdout)."""
from __future__ import annotations

from registry_shared.web.serve import serve

from .app import create_app
from .settings import WorkerSettings


def main() -> None:
    serve("metadata-worker", WorkerSettings, create_app)


if __name__ == "__main__":
    main()
