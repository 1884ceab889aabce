"""pyproject.toml, environment.yml and anaconda-project.yml list the same packages."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]

# Names that differ between PyPI and conda-forge, and entries conda needs for itself.
CONDA_NAMES = {"psycopg[binary]": "psycopg", "arch": "arch-py"}
CONDA_ONLY = {"python", "pip"}


def parse(requirement: str) -> tuple[str, str]:
    """``'pandas>=2.2,<3  # why'`` -> ``('pandas', '>=2.2,<3')``."""
    requirement = requirement.split("#")[0].strip()
    name, spec = re.match(r"([A-Za-z0-9_.\-\[\]]+)\s*(.*)", requirement).groups()
    name = CONDA_NAMES.get(name.lower(), name.lower())
    return name, spec.replace(" ", "")


def pyproject_packages() -> dict:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return dict(map(parse, requirements))


def conda_packages(entries: list) -> dict:
    packages = {}
    for entry in entries:
        for requirement in entry["pip"] if isinstance(entry, dict) else [entry]:
            name, spec = parse(requirement)
            if name not in CONDA_ONLY:
                packages[name] = spec
    return packages


@pytest.mark.parametrize("path, key", [("environment.yml", "dependencies"), ("anaconda-project.yml", "packages")])
def test_conda_files_list_the_pyproject_packages(path, key):
    spec = yaml.safe_load((ROOT / path).read_text())
    assert conda_packages(spec[key]) == pyproject_packages()


def test_anaconda_project_has_its_commands_and_one_package_list():
    spec = yaml.safe_load((ROOT / "anaconda-project.yml").read_text())
    assert {"dashboard", "lab", "ingest", "test"} <= set(spec["commands"])
    assert spec["dependencies"] == spec["packages"]
