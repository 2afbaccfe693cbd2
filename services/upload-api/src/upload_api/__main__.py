"""Run upload-api: `python -m upload_api` (settings from the environment, JSON logs on stdout)."""
from __future__ import annotations

from registry_shared.web.serve import serve

from .app import create_app
from .settings import UploadSettings


def main() -> None:
    serve("upload-api", UploadSettings, create_app)


if __name__ == "__main__":
    main()
