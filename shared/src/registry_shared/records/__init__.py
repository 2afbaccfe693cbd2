"""The stored documents, one typed model per collection kind (DESIGN.md "Upload (write path)").

What one service writes and another reads goes through these models, never a dict read by key: the
repositories in `registry_shared.adapters` (and each service's own adapters) return them, and build their
writes from them. Field names are the stored ones (contracts.md, "MongoDB collections"), so documents
written before a model existed still read; fields an older document lacks get defaults.

They are frozen dataclasses with slots rather than pydantic models: `from_doc` runs on index-api's read
path (a file lookup per download, a page document per change), and a plain constructor is several times
cheaper than validation. The data comes from our own database, so there is nothing to validate beyond
the conversions each `from_doc` makes.
"""
from .files import FileState, StoredFile
from .packages import PackageRecord
from .pages import PackagePageDoc, ScopeIndexDoc

__all__ = ["FileState", "PackagePageDoc", "PackageRecord", "ScopeIndexDoc", "StoredFile"]
