"""The ``.chkmate.yml`` file at a repository root: its models, and a parser whose errors name the line. Pure.

The file supplies defaults for the Environments planned from the repository; an Environment object may
override any of them (that merge belongs to the Environment controller, not here)::

    version: 1
    environments:
      production:
        branch: main
        path: stacks/network
        region: eu-west-1
        credential: aws-prod          # a Secret in the Environment's namespace
        autoDeploy: false             # true: apply without a manual approval
        planOnPullRequest: true
        engine: terraform             # terraform | tofu | builtin
        vars: {name: prod}
      staging: {branch: staging, path: stacks/network, autoDeploy: true}
    notify:
      slack: "#infra"

Keys are camelCase. Unknown and repeated keys are errors, so a typo cannot pass silently. Values keep
their YAML types (``autoDeploy: "yes"`` is refused); only ``vars`` turns numbers and booleans into the
strings Terraform reads. :func:`parse` takes the text and does no file access; its errors look like
``.chkmate.yml:7: environments.production.engine: Input should be 'terraform', 'tofu' or 'builtin'``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, Self

import pydantic
import pydantic_core
import yaml

from chkmate.api import base, common, environments, templates

FILENAME = ".chkmate.yml"
VERSION = 1
ENVIRONMENT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# Slack channel names: lowercase letters, digits, '-', '_' and '.', at most 80 characters.
SLACK_CHANNEL_PATTERN = r"^#[a-z0-9][a-z0-9._-]{0,79}$"
MAX_BRANCH_LENGTH = 255
_YAML_MERGE_TAG = "tag:yaml.org,2002:merge"
_YAML_STR_TAG = "tag:yaml.org,2002:str"
_NOT_TEXT_KEY = (
    "a key must be text: quote it (YAML reads unquoted on, off, yes, no, true, false, null and numbers as other types)"
)

# git check-ref-format's rules for a branch name (`git help check-ref-format`), each with the reason shown.
_BRANCH_RULES: tuple[tuple[Callable[[str], bool], str], ...] = (
    (lambda name: not name, "it is empty"),
    (lambda name: len(name) > MAX_BRANCH_LENGTH, f"it is longer than {MAX_BRANCH_LENGTH} characters"),
    (
        lambda name: re.search(r"[\x00-\x20\x7f~^:?*\[\\]", name) is not None,
        "it contains a space, a control character or one of ~ ^ : ? * [ \\",
    ),
    (lambda name: name.startswith(("-", "/")), "it starts with '-' or '/'"),
    (lambda name: name.endswith(("/", ".")), "it ends with '/' or '.'"),
    (lambda name: any(bad in name for bad in ("..", "//", "@{")), "it contains '..', '//' or '@{'"),
    (lambda name: name in {"@", "HEAD"}, "'@' and 'HEAD' are reserved"),
    (
        lambda name: any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")),
        "a part between slashes starts with '.' or ends with '.lock'",
    ),
)


def check_branch_name(name: str) -> str:
    """``name`` when git accepts it as a branch name; raises ValueError saying why not otherwise."""
    for breaks, reason in _BRANCH_RULES:
        if breaks(name):
            raise ValueError(f"{name!r} is not a valid branch name: {reason}")
    return name


class _NestedError(ValueError):
    """A validation error about a key below the model that raises it (``loc`` is relative to that model)."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(f"{'.'.join(loc)}: {message}")
        self.loc = loc
        self.message = message


def _matching(pattern: str, what: str) -> pydantic.AfterValidator:
    def check(value: str) -> str:
        if re.fullmatch(pattern, value) is None:
            raise ValueError(f"{value!r} is not {what}")
        return value

    return pydantic.AfterValidator(check)


def _var_to_string(value: object) -> object:
    """Terraform reads -var values as text: write numbers and booleans the way HCL would."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("must be a string, a number or a boolean (put complex values in a .tfvars file)")
    return value


EnvironmentName = Annotated[
    str,
    _matching(
        ENVIRONMENT_NAME_PATTERN,
        "a valid environment name: at most 63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit",
    ),
]
VarName = Annotated[str, _matching(environments.VAR_NAME_PATTERN, "a valid Terraform variable name")]
VarValue = Annotated[str, pydantic.BeforeValidator(_var_to_string)]
SecretName = Annotated[
    str, _matching(common.K8S_NAME_PATTERN, "a valid Secret name (lowercase letters, digits, '-' and '.')")
]
SlackChannel = Annotated[str, _matching(SLACK_CHANNEL_PATTERN, "a Slack channel such as '#infra'")]


class _FileModel(base.Model):
    """Strict: a value must already have the right YAML type."""

    model_config = pydantic.ConfigDict(strict=True)


class EnvConfig(_FileModel):
    """Defaults for one environment: a branch and a folder of the repository, deployed to one target."""

    branch: Annotated[str, pydantic.AfterValidator(check_branch_name)] = pydantic.Field(
        description="Branch deployed to this environment."
    )
    path: str = pydantic.Field(default=".", description="Folder of the Terraform root module, relative to the root.")
    engine: environments.Engine = pydantic.Field(
        default="terraform", description="terraform, tofu, or builtin (a plan from the parsed HCL, no binary)."
    )
    region: str | None = pydantic.Field(default=None, min_length=1, max_length=64, description="Cloud region.")
    credential: SecretName | None = pydantic.Field(
        default=None, description="Secret, in the Environment's namespace, whose keys become the run's environment."
    )
    auto_deploy: bool = pydantic.Field(default=False, description="Apply plans without waiting for an approval.")
    plan_on_pull_request: bool = pydantic.Field(default=True, description="Plan pull requests against the branch.")
    apply_on_merge: bool = pydantic.Field(default=False, description="Apply when a pull request is merged.")
    vars: dict[VarName, VarValue] = pydantic.Field(
        default_factory=dict, description="Terraform input variables; numbers and booleans become strings."
    )

    @pydantic.field_validator("path")
    @classmethod
    def _relative_path(cls, path: str) -> str:
        """'.' or a clean relative folder; one trailing slash is dropped so 'a/' and 'a' are the same folder."""
        folder = path.removesuffix("/") if len(path) > 1 else path
        return folder if folder == "." else templates.check_relative_path(folder)


class Notify(_FileModel):
    """Where chkmate announces plans, applies, failures and drift, besides pull request comments."""

    slack: SlackChannel | None = pydantic.Field(default=None, description="A Slack channel such as '#infra'.")


class RepoConfig(_FileModel):
    """The whole ``.chkmate.yml``."""

    version: Literal[1] = pydantic.Field(description="Format version of the file; always 1.")
    environments: dict[EnvironmentName, EnvConfig] = pydantic.Field(
        default_factory=dict, description="Environments by name (DNS labels)."
    )
    notify: Notify = pydantic.Field(default_factory=Notify, description="Notifications.")

    @pydantic.model_validator(mode="after")
    def _one_environment_per_branch_and_path(self) -> Self:
        owners: dict[tuple[str, str], str] = {}
        for name, env in self.environments.items():
            owner = owners.setdefault((env.branch, env.path), name)
            if owner != name:
                raise _NestedError(
                    ("environments", name),
                    f"branch {env.branch!r} and path {env.path!r} already belong to environment {owner!r}; "
                    "two environments would plan the same code into different targets",
                )
        return self


def environment_for_branch(config: RepoConfig, branch: str) -> list[tuple[str, EnvConfig]]:
    """The (name, config) pairs of the environments deployed from ``branch``, sorted by name."""
    matches = [(name, env) for name, env in config.environments.items() if env.branch == branch]
    return sorted(matches, key=lambda match: match[0])


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong in the file: where (line, dotted key path) and why."""

    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = FILENAME if self.line is None else f"{FILENAME}:{self.line}"
        return ": ".join(part for part in (where, self.key, self.message) if part)


class RepoConfigError(ValueError):
    """The file is not a valid ``.chkmate.yml``. ``str()`` is the first problem by line; ``problems`` has all."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda problem: problem.line or 0))
        more = len(self.problems) - 1
        super().__init__(str(self.problems[0]) + (f" (and {more} more)" if more else ""))

    @property
    def line(self) -> int | None:
        return self.problems[0].line

    @property
    def key(self) -> str:
        return self.problems[0].key


Lines = dict[tuple[str, ...], int]


def parse(text: str) -> RepoConfig:
    """The config in ``text``; raises :class:`RepoConfigError` naming the line and key of each problem."""
    data, lines = _load(text.removeprefix("\ufeff"))
    _check_header(data, lines)
    try:
        return RepoConfig.model_validate(data, by_alias=True, by_name=False)
    except pydantic.ValidationError as e:
        raise RepoConfigError([_problem(error, lines) for error in e.errors()]) from e


def _load(text: str) -> tuple[object, Lines]:
    """The YAML document and the line of every key in it."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as e:  # raised at once for characters YAML does not allow
        raise _error(text.count("\n", 0, e.position) + 1, "", f"invalid YAML: {e.reason}") from e
    try:
        node = loader.get_single_node()
        if node is None:
            raise _error(None, "", f"the file is empty; it needs at least `version: {VERSION}`")
        lines = _key_lines(node)  # before construction, which flattens merge keys (<<) into the nodes
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        reason = ": ".join(part for part in (e.context, e.problem) if part)
        raise _error(None if mark is None else mark.line + 1, "", f"invalid YAML: {reason}") from e
    finally:
        loader.dispose()


def _key_lines(root: yaml.Node) -> Lines:
    """Line numbers (1-based) of every mapping key and sequence item, by path; refuses repeated keys."""
    lines: Lines = {(): root.start_mark.line + 1}
    visited: set[int] = set()  # an alias repeats a node: walk it once (aliases may even be recursive)
    pending: list[tuple[tuple[str, ...], yaml.Node]] = [((), root)]
    while pending:
        path, node = pending.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        for child, line, value in _children(path, node):
            if child in lines:
                raise _error(line, ".".join(child), f"repeated key (first at line {lines[child]})")
            lines[child] = line
            pending.append((child, value))
    return lines


def _children(path: tuple[str, ...], node: yaml.Node) -> list[tuple[tuple[str, ...], int, yaml.Node]]:
    if isinstance(node, yaml.SequenceNode):
        return [((*path, str(index)), item.start_mark.line + 1, item) for index, item in enumerate(node.value)]
    if not isinstance(node, yaml.MappingNode):
        return []
    children = []
    for key, value in node.value:
        if key.tag == _YAML_MERGE_TAG:
            continue
        child, line = (*path, str(key.value)), key.start_mark.line + 1
        if key.tag != _YAML_STR_TAG:
            raise _error(line, ".".join(child), _NOT_TEXT_KEY)
        children.append((child, line, value))
    return children


def _check_header(data: object, lines: Lines) -> None:
    """Refuse what is not a version-1 mapping before validating it, so other keys do not add noise."""
    if data is None:
        raise _error(None, "", f"the file is empty; it needs at least `version: {VERSION}`")
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise _error(
            lines[()], "", f"the file must be a mapping of keys such as version and environments, not a {kind}"
        )
    if "version" not in data:
        raise _error(lines[()], "version", f"missing; the file must start with `version: {VERSION}`")
    version = data["version"]
    if type(version) is not int or version != VERSION:
        raise _error(
            lines[("version",)], "version", f"unsupported version {version!r}; chkmate reads version {VERSION}"
        )


def _error(line: int | None, key: str, message: str) -> RepoConfigError:
    return RepoConfigError([Problem(line, key, message)])


def _problem(error: pydantic_core.ErrorDetails, lines: Lines) -> Problem:
    loc = tuple(str(part) for part in error["loc"])
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, _NestedError):
        loc += cause.loc
    keys = tuple(part for part in loc if part != "[key]")
    line = next((lines[keys[:n]] for n in range(len(keys), -1, -1) if keys[:n] in lines), None)
    return Problem(line, ".".join(keys), _message(error, keys, cause))


def _message(error: pydantic_core.ErrorDetails, keys: tuple[str, ...], cause: object) -> str:
    if error["type"] == "extra_forbidden":
        return _unknown_key_message(keys[-1], _known_keys(keys[:-1]))
    if error["type"] == "missing":
        return "required key missing"
    if isinstance(cause, _NestedError):
        return cause.message
    if isinstance(cause, ValueError):
        return str(cause)
    return error["msg"]


def _unknown_key_message(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key{hint} (known keys: {', '.join(known)})"


def _known_keys(loc: tuple[str, ...]) -> list[str]:
    """The keys the model at ``loc`` (a path into :class:`RepoConfig`) accepts, camelCase."""
    annotation: Any = RepoConfig
    for part in loc:
        if typing.get_origin(annotation) is dict:  # ``part`` is a key of the dict: step to its values
            annotation = typing.get_args(annotation)[1]
            continue
        if not (isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)):
            return []
        fields = {field.alias or name: field for name, field in annotation.model_fields.items()}
        if part not in fields:
            return []
        annotation = fields[part].annotation
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return []


def with_defaults(
    spec: environments.EnvironmentSpec, defaults: EnvConfig | None, *, pull_request: bool
) -> environments.EnvironmentSpec:
    """The Environment's spec with what it leaves unset taken from its ``.chkmate.yml`` entry: ``autoDeploy``
    (``approval.mode: auto``), ``applyOnMerge`` and ``planOnPullRequest``. What the Environment sets wins.

    The file is read at the commit being planned. A pull request's own file approves nothing: ``autoDeploy``
    and ``applyOnMerge`` count for branch plans only (a merged file was reviewed; a proposed one was not).
    ``applyOnMerge`` and ``planOnPullRequest`` are unset when None (the schema has no default for them, so the
    API server stores nothing), and always set here: without an entry they are false and true.
    """
    given, update = spec.model_fields_set, dict[str, Any]()
    if spec.plan_on_pull_request is None:
        update["plan_on_pull_request"] = defaults.plan_on_pull_request if defaults is not None else True
    if spec.apply_on_merge is None:
        update["apply_on_merge"] = defaults.apply_on_merge if defaults is not None and not pull_request else False
    if defaults is not None and not pull_request and "approval" not in given and defaults.auto_deploy:
        update["approval"] = environments.Approval(mode="auto")
    return spec.model_copy(update=update)
