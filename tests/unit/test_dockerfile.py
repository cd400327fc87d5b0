"""The Dockerfile's structure, as BuildKit's own parser reads it (no image can be built on these machines).

Checks what the issue asks of the image: multi-stage, base images pinned by version, versions as build
arguments, OpenTofu verified against a sha256 at build time, the package installed from wheels built in the
builder stage, a numeric non-root user, an exec-form entrypoint running the operator, a health check, no
secrets, and a .dockerignore that keeps local state out of the build context.

I/O: reads Dockerfile, .dockerignore and pyproject.toml. The parser is the `dockerfile` package (Go's
moby/buildkit parser), installed by dev/install-tools.sh.
"""

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from chkmate import settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"

Instruction = Any  # dockerfile.Command: cmd, flags, value, json


def instructions() -> list[Instruction]:
    try:
        import dockerfile  # type: ignore[import-not-found]  # installed by dev/install-tools.sh
    except ImportError:
        pytest.fail("the dockerfile parser is not installed: run `bash dev/install-tools.sh`", pytrace=False)
    return list(dockerfile.parse_file(str(DOCKERFILE)))


def stages() -> list[list[Instruction]]:
    """Instructions per build stage; the global ARGs before the first FROM are left out."""
    result: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.cmd == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def global_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for instruction in instructions():
        if instruction.cmd == "FROM":
            break
        name, _, default = instruction.value[0].partition("=")
        args[name] = default
    return args


def stage_args(stage: list[Instruction]) -> dict[str, str]:
    return dict(i.value[0].partition("=")[::2] for i in stage if i.cmd == "ARG")


def expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], text)


def runs(stage: list[Instruction]) -> str:
    return "\n".join(" ".join(i.value) for i in stage if i.cmd == "RUN")


def test_multi_stage_from_pinned_python_images() -> None:
    froms = [stage[0] for stage in stages()]
    assert len(froms) >= 2
    assert froms[0].value[1:] == ("AS", "builder")
    for instruction in froms:
        image = expand(instruction.value[0], global_args())
        repository, _, tag = image.partition("@")[0].partition(":")
        assert repository == "python" and tag != "latest"
        assert re.fullmatch(r"3\.11\.\d+-slim-\w+", tag), f"{image}: pin Python by full version, slim variant"


def test_versions_are_build_arguments() -> None:
    builder = stages()[0]
    args = {**global_args(), **stage_args(builder)}
    assert re.fullmatch(r"3\.11\.\d+", args["PYTHON_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["TOFU_VERSION"])
    assert re.fullmatch(r"[0-9a-f]{64}", args["TOFU_SHA256"])
    assert "${TOFU_VERSION}" in runs(builder)


def test_opentofu_is_verified_against_its_sha256_at_build_time() -> None:
    builder = runs(stages()[0])
    download = re.search(r'curl [^\n]*-o "(?P<file>[^"]+)"', builder)
    assert download is not None
    check = f'echo "${{TOFU_SHA256}}  {download["file"]}" | sha256sum --check --strict -'
    assert check in builder
    assert builder.index(check) < builder.index("unzip -q"), "verify before unpacking"


def test_the_package_is_installed_from_wheels_built_in_the_builder() -> None:
    builder, final = stages()[0], stages()[-1]
    assert "pip wheel --no-cache-dir --wheel-dir /wheels ." in runs(builder)
    assert "pip install --no-cache-dir --no-index --find-links=/wheels chkmate-operator" in runs(final)
    copies = [i for i in final if i.cmd in ("COPY", "ADD")]
    assert copies and all(any(flag.startswith("--from=builder") for flag in i.flags) for i in copies)
    assert "git" in runs(final).split(), "GitPython needs the git binary"


def test_runs_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    users = [i for i in final if i.cmd == "USER"]
    assert users, "the final stage must set USER"
    user, _, group = users[-1].value[0].partition(":")
    assert user.isdigit() and int(user) != 0
    assert group == "" or (group.isdigit() and int(group) != 0)
    assert f"--uid {user}" in runs(final)


def test_entrypoint_runs_the_operator_in_exec_form() -> None:
    [entrypoint] = [i for i in stages()[-1] if i.cmd == "ENTRYPOINT"]
    assert entrypoint.json, "exec form: signals reach the operator, not a shell"
    assert entrypoint.value == ("chkmate-operator",)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["chkmate-operator"] == "chkmate.main:run"


def test_operator_settings_in_the_image_are_known_and_name_the_shipped_engine() -> None:
    flat = [word for i in stages()[-1] if i.cmd == "ENV" for word in i.value]  # name, value, name, value, ...
    env = dict(zip(flat[::2], flat[1::2], strict=True))
    ours = {name: value for name, value in env.items() if name.startswith(settings.PREFIX)}
    parsed = settings.Settings.from_env(ours)  # raises on a variable the operator does not know
    assert parsed.terraform_binary == "tofu", "the image ships OpenTofu only"
    assert "/usr/local/bin/tofu" in [i.value[-1] for i in stages()[-1] if i.cmd == "COPY"]


def test_health_check_probes_kopfs_liveness_endpoint() -> None:
    [healthcheck] = [i for i in stages()[-1] if i.cmd == "HEALTHCHECK"]
    assert healthcheck.json and healthcheck.value[0] == "CMD"
    assert "/healthz" in " ".join(healthcheck.value) and "CHKMATE_LIVENESS_PORT" in " ".join(healthcheck.value)


def test_no_secrets_in_the_image_definition() -> None:
    text = DOCKERFILE.read_text()
    for pattern in (
        r"gh[pousr]_[A-Za-z0-9]{20,}",
        r"github_pat_",
        r"-----BEGIN",
        r"AKIA[0-9A-Z]{16}",
        r"://[^/\s]+:[^@\s]+@",
    ):
        assert re.search(pattern, text) is None, pattern
    names = [i.value[0].partition("=")[0] for i in instructions() if i.cmd == "ARG"]
    names += [i.value[0] for i in instructions() if i.cmd == "ENV"]
    assert [n for n in names if re.search(r"TOKEN|SECRET|PASSWORD|PRIVATE|CREDENTIAL", n)] == []


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", ".cache"} <= ignored
    copied = [path for stage in stages() for i in stage if i.cmd == "COPY" and not i.flags for path in i.value[:-1]]
    assert sorted(copied) == ["README.md", "operator", "pyproject.toml"]
    assert all((REPO / path).exists() and path not in ignored for path in copied)
