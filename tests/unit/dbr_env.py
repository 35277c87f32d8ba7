"""What installing the wheel on Databricks Runtime 17.3 LTS brings (pure, offline): the wheel's requirements
(pyproject.toml) and, through the metadata of the versions installed here (constraints.txt), their
requirements in turn, with markers evaluated for the runtime's Python (3.12 on Linux), each checked against
the runtime's Python libraries (constraints-dbr-17.3.txt).

A requirement on a runtime library must admit the runtime's version, else pip would replace it; anything
else is a new install, whose own requirements are walked the same way."""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DBR_CONSTRAINTS = ROOT / "constraints-dbr-17.3.txt"
# The marker environment of Databricks Runtime 17.3 LTS's Python (3.12.3, Ubuntu, x86_64).
DBR_MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def runtime_versions(path: Path = DBR_CONSTRAINTS) -> dict[str, Version]:
    """``name==version`` lines of a constraints file, by canonical name."""
    versions: dict[str, Version] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", line
        versions[canonicalize_name(req.name)] = Version(spec.version)
    return versions


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def wheel_requirements(extra: str | None = None) -> list[Requirement]:
    """The wheel's requirements: ``[project] dependencies``, or one extra's."""
    p = project()
    lines = p["dependencies"] if extra is None else p["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@dataclass
class Resolution:
    replaced: list[str] = field(default_factory=list)  # "<who> requires <req>: the runtime has <version>"
    kept: dict[str, Version] = field(default_factory=dict)  # runtime libraries some requirement names (admitted)
    new: dict[str, Version] = field(default_factory=dict)  # packages the runtime lacks, at the version installed here
    unknown: list[str] = field(default_factory=list)  # new packages not installed here: their requirements unread


def resolve(requirements: list[Requirement], runtime: dict[str, Version] | None = None) -> Resolution:
    """Walk ``requirements`` (as the wheel's) against the runtime's libraries."""
    runtime = runtime_versions() if runtime is None else runtime
    out = Resolution()
    todo: list[tuple[str, Requirement]] = [("the wheel", r) for r in requirements]
    seen: set[str] = set()
    while todo:
        who, req = todo.pop(0)
        if req.marker is not None and not req.marker.evaluate({**DBR_MARKERS, "extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in runtime:
            have = runtime[name]
            if req.specifier.contains(have, prereleases=True):
                out.kept[name] = have
            else:
                out.replaced.append(f"{who} requires {req}: the runtime has {req.name} {have}")
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            out.unknown.append(name)
            continue
        version = Version(dist.version)
        out.new[name] = version
        if not req.specifier.contains(version, prereleases=True):
            out.replaced.append(f"{who} requires {req}: {req.name} {version} is what is installed and tested here")
        todo.extend((f"{name} {version}", Requirement(line)) for line in dist.requires or ())
    return out
