"""Secrets: generated with enough entropy, stored only as SHA-256 hashes, compared in constant time."""
from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIXES = {"personal": "glpat-", "deploy": "gldt-", "job": "glcbt-"}


def generate_token(kind: str) -> str:
    """A new token for `kind` (personal, deploy, job): a GitLab-like prefix and 160 random bits."""
    return PREFIXES[kind] + secrets.token_urlsafe(20)


def hash_token(token: str) -> str:
    """The only form in which a token is stored or looked up. Tokens are random, so no salt is needed."""
    return hashlib.sha256(token.encode("utf-8", errors="surrogateescape")).hexdigest()


def hashes_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
