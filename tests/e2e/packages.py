"""Building real distributions for end-to-end tests, with the project's own build tools."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def build_package(workdir: Path, name: str, version: str, value: int, readme: str = "A demo package.\n",
                  requires_python: str = ">=3.8") -> list[Path]:
    """Write a tiny setuptools project and build its wheel and sdist; returns [wheel, sdist]."""
    module = name.replace("-", "_")
    src = workdir / f"{name}-{version}-src"
    (src / "src" / module).mkdir(parents=True)
    (src / "src" / module / "__init__.py").write_text(f"VALUE = {value}\n")
    (src / "README.md").write_text(readme)
    (src / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "{version}"
        description = "End-to-end test package"
        readme = {{file = "README.md", content-type = "text/markdown"}}
        requires-python = "{requires_python}"
        keywords = ["e2e", "registry"]
        """))
    out = workdir / f"dist-{name}-{version}-{value}"
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
                   check=True, capture_output=True, text=True)
    wheels = sorted(out.glob("*.whl"))
    sdists = sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return [wheels[0], sdists[0]]
