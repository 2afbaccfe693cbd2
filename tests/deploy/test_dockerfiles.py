"""The services' Dockerfiles (no Docker engine here: the files are read, not built).

Checked: a pinned slim Python base, a numeric non-root USER that the chart's runAsUser agrees with,
pinned dependencies, an entry point that exists, and one identical dependencies stage in all four.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from .conftest import CHART, REPO, SERVICES

CONSTRAINTS = REPO / "deploy" / "docker" / "constraints.txt"
DEV_LOCK = REPO / "requirements-dev.lock"
# python:<major>.<minor>.<patch>-slim[-<debian>], optionally by digest: never a floating `3.11-slim`.
PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Dockerfile:
    args: dict[str, str]  # ARG defaults declared before the first FROM
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def parse(path: Path) -> Dockerfile:
    """Instructions joined across `\\` continuations, comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages:
            if keyword == "ARG":
                key, _, default = rest.partition("=")
                args[key.strip()] = default.strip()
        else:
            stages[-1].instructions.append((keyword, rest.strip()))
    return Dockerfile(args, stages)


def dockerfile(component: str) -> Path:
    return REPO / "services" / component / "Dockerfile"


@pytest.fixture(scope="module")
def chart_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


@pytest.mark.parametrize("component", SERVICES)
def test_base_image_is_a_pinned_slim_python(component: str) -> None:
    parsed = parse(dockerfile(component))
    stage_names = {s.name for s in parsed.stages if s.name}
    for stage in parsed.stages:
        if stage.base in stage_names:
            continue
        match = re.fullmatch(r"\$\{?(\w+)\}?", stage.base)
        image = parsed.args.get(match.group(1), "") if match else stage.base
        assert PINNED_PYTHON.match(image), f"{component}: FROM {stage.base} ({image}) is not a pinned python slim"


@pytest.mark.parametrize("component", SERVICES)
def test_runs_as_the_chart_s_non_root_user(component: str, chart_values: dict) -> None:
    final = parse(dockerfile(component)).final
    users = [i for i, (keyword, _) in enumerate(final.instructions) if keyword == "USER"]
    assert users, f"{component}: no USER in the final stage"
    user = final.instructions[users[-1]][1]
    uid, _, gid = user.partition(":")
    # numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd
    assert uid.isdigit() and int(uid) > 0, f"{component}: USER {user}"
    assert int(uid) == chart_values["podSecurityContext"]["runAsUser"]
    if gid:
        assert int(gid) == chart_values["podSecurityContext"]["runAsGroup"]
    after = [keyword for keyword, _ in final.instructions[users[-1]:]]
    assert "RUN" not in after, f"{component}: RUN after USER would run as the service user at build time"


@pytest.mark.parametrize("component", SERVICES)
def test_entry_point_is_the_service_module(component: str) -> None:
    final = parse(dockerfile(component)).final
    [entrypoint] = [rest for keyword, rest in final.instructions if keyword == "ENTRYPOINT"]
    module = SERVICES[component][1]
    assert entrypoint == f'["python", "-m", "{module}"]'
    assert (REPO / "services" / component / "src" / module / "__main__.py").is_file()
    exposed = [rest for keyword, rest in final.instructions if keyword == "EXPOSE"]
    assert exposed == ["8080"]


@pytest.mark.parametrize("component", SERVICES)
def test_every_install_is_pinned(component: str) -> None:
    parsed = parse(dockerfile(component))
    installs = [rest for stage in parsed.stages for keyword, rest in stage.instructions
                if keyword == "RUN" and "pip install" in rest]
    assert installs
    for command in installs:
        pinned = "--constraint /build/constraints.txt" in command or "--requirement /build/constraints.txt" in command
        assert pinned or "--no-deps" in command, f"{component}: unpinned `{command}`"
        assert "--no-build-isolation" in command or "--requirement" in command, (
            f"{component}: `{command}` would fetch unpinned build tools")


@pytest.mark.parametrize("component", SERVICES)
def test_build_sources_exist(component: str) -> None:
    parsed = parse(dockerfile(component))
    for stage in parsed.stages:
        for keyword, rest in stage.instructions:
            if keyword == "COPY" and not rest.startswith("--from"):
                for source in rest.split()[:-1]:
                    assert (REPO / source).exists(), f"{component}: COPY {source}"
            for source in re.findall(r"--mount=type=bind,source=([^,\s]+)", rest):
                assert (REPO / source).is_dir(), f"{component}: bind mount {source}"
                assert source == f"services/{component}", f"{component} installs {source}"


def test_the_dependencies_stage_is_shared() -> None:
    """Identical text means identical cached layers: the four images share the dependencies."""
    stages = {c: parse(dockerfile(c)).stages[0] for c in SERVICES}
    first = next(iter(stages.values()))
    assert first.name == "dependencies"
    for component, stage in stages.items():
        assert stage == first, f"{component}: its dependencies stage differs from the others'"


def test_locks_match_what_is_installed() -> None:
    """Both lock files cover the dependency closure and equal the installed versions. `make` installs with
    the lock as constraints, so only a commit (a `make lock`, a new dependency) can make this differ."""
    result = subprocess.run([sys.executable, str(REPO / "deploy" / "docker" / "lock.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _pins(path: Path) -> dict[str, str]:
    return dict(line.split("==", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def test_make_installs_from_the_lock() -> None:
    """Every pip install of the virtualenv is constrained by the lock; nothing builds with unpinned tools."""
    installs = [line for line in (REPO / "Makefile").read_text().splitlines()
                if "$(BIN)/python -m pip install" in line]
    assert len(installs) == 2
    for line in installs:
        assert "--constraint $(LOCK)" in line, line
    assert "--no-build-isolation" in installs[1]


def test_the_dev_lock_agrees_with_the_images_and_the_requirements() -> None:
    dev = _pins(DEV_LOCK)
    for name, version in _pins(CONSTRAINTS).items():
        assert dev.get(name) == version, f"{name}: images pin {version}, requirements-dev.lock {dev.get(name)}"
    for line in (REPO / "requirements-dev.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            assert version, f"requirements-dev.txt: {requirement} is not pinned"
            key = name.strip().lower().replace("_", "-").replace(".", "-")
            assert dev.get(key) == version.strip(), f"{requirement}: requirements-dev.lock has {dev.get(key)}"


def test_constraints_pin_what_shared_declares() -> None:
    pinned = _pins(CONSTRAINTS)
    declared = tomllib.loads((REPO / "shared" / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:
        name, _, version = requirement.partition("==")
        assert version, f"shared/pyproject.toml: {requirement} is not pinned"
        assert pinned.get(name.strip().lower().replace("_", "-")) == version.strip(), (
            f"{requirement} differs from deploy/docker/constraints.txt: run `make lock`")
