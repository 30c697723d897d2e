"""The conda environment files (root and binder/) carry every runtime dependency of pyproject.toml,
and binder/ follows repo2docker's rules (postBuild installs the package; root files are ignored there)."""

import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENT_FILES = [ROOT / "environment.yml", ROOT / "binder" / "environment.yml"]
CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(line) for line in project["dependencies"]]


def environment_specs(path: Path) -> dict[str, SpecifierSet | str]:
    """Package name -> version specifier, from conda's list and its ``pip:`` section alike."""
    specs: dict[str, SpecifierSet | str] = {}
    for entry in yaml.safe_load(path.read_text(encoding="utf-8"))["dependencies"]:
        for line in entry["pip"] if isinstance(entry, dict) else [entry]:
            if line.startswith("-"):
                continue  # pip options such as "-e ."
            match = CONDA_SPEC.match(line)
            assert match, f"{path.name}: cannot read the dependency {line!r}"
            name, version = match.groups()
            try:
                specs[normalized(name)] = SpecifierSet(version)
            except ValueError:
                specs[normalized(name)] = version  # conda-only syntax such as python=3.11
    return specs


@pytest.mark.parametrize("environment", ENVIRONMENT_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_runtime_dependency_is_in_the_environment_file_with_the_same_bounds(environment):
    specs = environment_specs(environment)
    missing = [str(req) for req in runtime_requirements() if normalized(req.name) not in specs]
    assert not missing, f"add to {environment.relative_to(ROOT)}: {', '.join(missing)}"
    differing = [
        f"{req.name}: pyproject {req.specifier or 'any'} vs {specs[normalized(req.name)] or 'any'}"
        for req in runtime_requirements()
        if specs[normalized(req.name)] != req.specifier
    ]
    assert not differing, f"align the bounds in {environment.relative_to(ROOT)}: {'; '.join(differing)}"


@pytest.mark.parametrize("environment", ENVIRONMENT_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_the_environment_has_jupyterlab_with_widgets(environment):
    specs = environment_specs(environment)
    assert {"jupyterlab", "jupyterlab-widgets", "ipywidgets", "ipykernel"} <= specs.keys()


def test_both_environment_files_list_the_same_packages():
    root, binder = (environment_specs(path) for path in ENVIRONMENT_FILES)
    assert sorted(root.keys() - {"python"}) == sorted(binder.keys() - {"python"})


def test_binder_post_build_installs_the_package_from_the_repository_root():
    post_build = ROOT / "binder" / "postBuild"
    text = post_build.read_text(encoding="utf-8")
    assert text.startswith("#!"), "repo2docker runs postBuild as a script: it needs a shebang line"
    assert os.access(post_build, os.X_OK), "repo2docker runs postBuild only when it is executable"
    assert re.search(r"^python -m pip install .*-e \.$", text, re.MULTILINE)


def test_binder_environment_does_not_install_the_package_itself():
    # repo2docker builds the environment before it copies the repository, so "-e ." cannot work there.
    pip = next(
        entry["pip"]
        for entry in yaml.safe_load(ENVIRONMENT_FILES[1].read_text(encoding="utf-8"))["dependencies"]
        if isinstance(entry, dict)
    )
    assert not [line for line in pip if line.startswith("-e")]
