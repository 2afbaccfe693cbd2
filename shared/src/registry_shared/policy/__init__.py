"""Supply-chain policy (SPEC §9) as pure functions: the document and its validation, name patterns, the
evaluation of a file against the levels that apply to it, PEP 792 package status, and OSV advisories
turned into blocked rules. No I/O here: the services load the documents and cache the compiled levels."""
from __future__ import annotations

from .document import BlockedRule, PolicyDocument, parse_policy
from .evaluate import CompiledPolicy, EffectivePolicy, Verdict, Withheld, compile_policy
from .status import PackageStatus, parse_status

__all__ = ["BlockedRule", "CompiledPolicy", "EffectivePolicy", "PackageStatus", "PolicyDocument", "Verdict",
           "Withheld", "compile_policy", "parse_policy", "parse_status"]
