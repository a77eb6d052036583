"""Static checks of the Dockerfile and the offline image build, fast enough for every CI run.

Building the image takes minutes and needs buildah (scripts/image/build.sh and smoke.sh do it);
these checks catch the usual regressions without building: a compiler or pip sneaking into the
final stage, the image running as root, the Ceph bindings dropped, a new source directory left
out of the build context, or the locally made base missing a package that the Dockerfile would
then fetch from the network in the middle of an offline build.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE_SCRIPTS = ROOT / "scripts" / "image"
# what a stage that builds native code would install; none of it belongs in the final stage
BUILD_TOOL = re.compile(
    r"^(gcc|g\+\+|cpp|clang|make|cmake|build-essential|binutils|python3-pip|.*-dev)(-\d+)?$"
)


@dataclasses.dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]]  # (KEYWORD, arguments)

    def arguments(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def ensured_packages(self) -> list[str]:
        """The Debian packages the stage's "install what is missing" loop names."""
        packages: list[str] = []
        for run in self.arguments("RUN"):
            for match in re.finditer(r"for pkg in ([^;]+);", run):
                packages += match[1].split()
            for match in re.finditer(r"apt-get install ([^;&|]+)", run):
                packages += [w for w in match[1].split() if not w.startswith(("-", "$", '"$'))]
        return packages


def logical_lines(text: str) -> list[str]:
    """Dockerfile lines with continuations joined; comments and blank lines dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(" ".join((pending + raw).split()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return lines


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs (before the first FROM) with their defaults, and the stages in order."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name, instructions=[]))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    return parse((ROOT / "Dockerfile").read_text())


def final(dockerfile: tuple[dict[str, str], list[Stage]]) -> Stage:
    return dockerfile[1][-1]


def test_parser_reads_stages_and_continuations() -> None:
    args, stages = parse(
        "ARG BASE=a:b\n# note\nFROM ${BASE} AS one\nRUN x \\\n    y\nFROM ${BASE}\nUSER 1\n"
    )
    assert args == {"BASE": "a:b"}
    assert [(s.base, s.name) for s in stages] == [("${BASE}", "one"), ("${BASE}", None)]
    assert stages[0].instructions == [("RUN", "x y")]
    assert stages[1].arguments("USER") == ["1"]


def test_multi_stage_on_a_replaceable_debian_slim_base(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    global_args, stages = dockerfile
    assert global_args.get("BASE_IMAGE") == "debian:bookworm-slim"
    assert len(stages) >= 2
    assert all(stage.base == "${BASE_IMAGE}" for stage in stages)
    builder_names = {stage.name for stage in stages[:-1]}
    copies_from = {
        re.match(r"--from=(\S+)", args)[1]  # type: ignore[index]
        for args in final(dockerfile).arguments("COPY")
        if args.startswith("--from=")
    }
    assert copies_from and copies_from <= builder_names


def test_final_stage_runs_as_a_numeric_non_root_user(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    users = final(dockerfile).arguments("USER")
    assert users, "the final stage sets no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    # numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd
    assert uid.isdigit() and int(uid) == 10001
    assert not gid or (gid.isdigit() and int(gid) != 0)
    runs = " ".join(final(dockerfile).arguments("RUN"))
    assert f"--uid {uid}" in runs
    created = re.search(r"useradd [^;]*?(\S+)\s*;", runs)
    assert created is not None and created[1] != "operator"  # Debian has a group of that name


def test_final_stage_has_the_ceph_bindings_and_no_build_tools(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    stage = final(dockerfile)
    packages = stage.ensured_packages()
    assert {"python3", "python3-rados", "python3-rbd"} <= set(packages)
    assert [p for p in packages if BUILD_TOOL.match(p)] == []
    for run in stage.arguments("RUN"):
        assert not re.search(r"\bpip\b", run), f"pip runs in the final stage: {run}"
    assert any("import rados, rbd" in run for run in stage.arguments("RUN"))


def test_entrypoint_is_the_kglance_command(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    (entrypoint,) = final(dockerfile).arguments("ENTRYPOINT")
    assert entrypoint == '["kglance"]'
    env = " ".join(final(dockerfile).arguments("ENV"))
    assert "PATH=/opt/kglance/bin:" in env
    assert "KGLANCE_SOCKET=/run/kglance/kglance.sock" in env


def test_build_context_holds_every_source_directory() -> None:
    """A package directory added to pyproject.toml must enter the image's build context."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dirs = set(project["tool"]["setuptools"]["package-dir"].values())
    needed = {d.split("/")[0] for d in package_dirs} | {
        "pyproject.toml",
        project["project"]["readme"],
    }
    lines = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore should be an allow-list"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert needed <= allowed
    build_sh = (IMAGE_SCRIPTS / "build.sh").read_text()
    sources = re.search(r"^SOURCES=\(([^)]*)\)", build_sh, re.MULTILINE)
    assert sources is not None
    assert needed <= set(shlex.split(sources[1]))


def test_local_base_has_every_package_the_stages_ensure(
    dockerfile: tuple[dict[str, str], list[Stage]],
) -> None:
    """Otherwise the offline buildah build would call apt-get inside the build."""
    make_base = (IMAGE_SCRIPTS / "make-base.sh").read_text()
    listed = re.search(r"^PACKAGES=(\S+)", make_base, re.MULTILINE)
    assert listed is not None
    in_base = set(listed[1].split(","))
    for stage in dockerfile[1]:
        assert set(stage.ensured_packages()) <= in_base, stage.name or "final stage"


@pytest.mark.parametrize("script", sorted(p.name for p in IMAGE_SCRIPTS.glob("*.sh")))
def test_image_scripts_parse(script: str) -> None:
    result = subprocess.run(
        ["bash", "-n", str(IMAGE_SCRIPTS / script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
