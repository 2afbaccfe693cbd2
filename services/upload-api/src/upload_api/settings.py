"""upload-api settings: the shared UploadSettings, read once in __main__."""
from registry_shared.settings import UploadSettings

__all__ = ["UploadSettings"]
