"""The builtin plan engine: a plan without a terraform binary, from the parsed HCL of a root module.

:func:`configuration` reads the ``.tf`` files of a root module, and of the local modules it calls, into a
:class:`Configuration`: every resource instance with its evaluated attributes, and the root outputs.
:func:`plan` diffs the configuration of the code against the last applied one into a
:class:`~chkmate.domain.plans.PlanResult` shaped like the terraform engine's, and :func:`serialize` /
:func:`deserialize` turn a configuration into JSON-ready data for the operator to keep as the last applied one.

Evaluation is deliberately small. Known values come from literals, ``var.*`` (the given variables, then
``*.auto.tfvars``, ``terraform.tfvars`` and the defaults), ``local.*``, outputs of local modules, ``each.*``,
``count.index``, ``path.*``, string templates, the arithmetic, comparison, logic and conditional operators, and a
few pure functions (:data:`FUNCTIONS`). Anything else (attributes of other resources, other functions, ``for``
expressions, template directives) is :class:`Unknown`: the expression text and a digest of every value it reads,
so it compares equal between two configurations exactly when the same expression reads the same values. A change
spreads along references as in terraform: an attribute reading a replaced resource, or a computed attribute that
an update recomputes (:data:`DERIVED`), becomes unknown and its resource changes too. Values read from sensitive
variables or outputs are kept as digests only (:class:`Sensitive`): never stored nor shown in clear.

It cannot know provider defaults, drift of the real infrastructure, replacements other than :data:`REPLACE_ON`,
nor a ``count``/``for_each`` that reads a resource (planned as one instance, with a warning). ``.tf.json`` files,
remote modules (a warning) and ``import`` blocks are not read.

Pure: files come in as a mapping of path to text. Parses (:mod:`chkmate.domain.hcl`), per-file extraction and
per-file evaluation are cached by content hash, so a re-plan after a one-file change parses and evaluates that
file only (see ``bench/builtin_engine.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

import hcl2
import lark

from chkmate import errors
from chkmate.api.conditions import Reasons
from chkmate.domain import hcl, plans

ENGINE = "builtin"
ENGINE_VERSION = f"1+python-hcl2.{hcl2.version.__version__}"
FORMAT = 1  # of serialize(); deserialize() refuses others
KNOWN_AFTER_APPLY = "(known after apply)"
CACHE_SIZE = hcl.PARSE_CACHE_SIZE
MAX_MODULE_DEPTH = 16

# Arguments whose change replaces the resource: the providers' ForceNew attributes, for common types only.
REPLACE_ON: Mapping[str, frozenset[str]] = {
    "terraform_data": frozenset({"triggers_replace"}),
    "null_resource": frozenset({"triggers"}),
    "random_id": frozenset({"keepers", "byte_length", "prefix"}),
    "random_string": frozenset({"keepers", "length", "special", "upper", "lower", "numeric"}),
    "random_password": frozenset({"keepers", "length", "special", "upper", "lower", "numeric"}),
    "aws_instance": frozenset({"ami", "availability_zone", "subnet_id", "key_name"}),
    "aws_db_instance": frozenset({"engine", "identifier", "db_name", "username", "availability_zone"}),
    "aws_s3_bucket": frozenset({"bucket", "bucket_prefix"}),
    "aws_vpc": frozenset({"cidr_block"}),
    "aws_subnet": frozenset({"vpc_id", "cidr_block", "availability_zone"}),
    "aws_security_group": frozenset({"name", "name_prefix", "description", "vpc_id"}),
    "aws_iam_role": frozenset({"name", "name_prefix"}),
    "google_storage_bucket": frozenset({"name", "location"}),
    "azurerm_resource_group": frozenset({"name", "location"}),
}
# Computed attributes an in-place update recomputes, with the argument they follow ("*": every type). Other
# computed attributes (id, arn...) stay known through an update.
DERIVED: Mapping[str, Mapping[str, str]] = {"*": {"tags_all": "tags"}, "terraform_data": {"output": "input"}}
RESOURCE_META = frozenset({"count", "for_each", "provider", "depends_on", "lifecycle", "provisioner", "connection"})
MODULE_META = frozenset({"source", "version", "count", "for_each", "providers", "depends_on"})

Mode = Literal["managed", "data"]
Key = int | str | None


class ConfigurationError(errors.ChkmateError):
    """The code cannot be planned (invalid HCL, a missing variable, a reference to nothing): the user must fix it."""

    reason = Reasons.PLAN_FAILED


class _Undeclared(ConfigurationError):
    """A reference to a variable, local or module that does not exist."""


class _Opaque(Exception):
    """Evaluation met a value only an apply can know."""


class _Tainted(Exception):
    """Evaluation read a sensitive value."""


# --- values -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Ref:
    """A reference to a resource (``data.`` first for a data source): ``address[key].attribute``.

    ``address`` carries the module prefix; ``key`` None means any instance, ``attribute`` None the whole object.
    """

    address: str
    key: Key = None
    attribute: str | None = None


@dataclasses.dataclass(frozen=True)
class Unknown:
    """A value known only after apply: its expression and a digest of every value the expression reads."""

    expression: str
    digest: str
    refs: frozenset[Ref] = dataclasses.field(default=frozenset(), compare=False)  # follows from the other two


@dataclasses.dataclass(frozen=True)
class Sensitive:
    """A value read from something sensitive, kept as a digest of its expression and inputs."""

    digest: str


@dataclasses.dataclass(frozen=True)
class Resource:
    """One resource instance (or data source) of a configuration, with its evaluated arguments."""

    address: str
    mode: Mode
    type: str
    name: str
    attributes: Mapping[str, Any]
    module: str = ""
    key: Key = None
    file: str | None = None
    line: int | None = None
    unknown_count: bool = False
    ignore_changes: tuple[str, ...] = ()  # argument names, or ("all",)
    replace_triggered_by: tuple[Ref, ...] = ()

    @property
    def base(self) -> str:
        """The address without the instance key."""
        return self.address.removesuffix(_key_suffix(self.key))


@dataclasses.dataclass(frozen=True)
class Output:
    """A root module output; a sensitive one holds a :class:`Sensitive` digest."""

    name: str
    value: Any
    sensitive: bool = False


@dataclasses.dataclass(frozen=True)
class Configuration:
    """What the code declares: resource instances by address, root outputs by name, moves, and warnings."""

    resources: Mapping[str, Resource] = dataclasses.field(default_factory=dict)
    outputs: Mapping[str, Output] = dataclasses.field(default_factory=dict)
    moves: tuple[tuple[str, str], ...] = ()  # (from, to) of ``moved`` blocks, module prefixes included
    warnings: tuple[str, ...] = ()


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=_encode_leaf)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _known(value: Any) -> Any:
    if isinstance(value, Unknown):
        raise _Opaque
    if isinstance(value, Sensitive):
        raise _Tainted
    return value


def _refs_in(value: Any) -> Iterator[Ref]:
    if isinstance(value, Unknown):
        yield from value.refs
    elif isinstance(value, list):
        for item in value:
            yield from _refs_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _refs_in(item)


# --- expressions ----------------------------------------------------------------------------------------------

Node = Callable[["_Scope"], Any]

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][\w-]*)
      | (?P<op>==|!=|<=|>=|&&|\|\||=>|\.\.\.|\[\*\]|\.\*|[-+*/%<>!?:.,()\[\]{}=])
      | (?P<quote>")""",
    re.VERBOSE,
)
_LEVELS = (("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*", "/", "%"))
_ROOTS = frozenset({"var", "local", "module", "each", "count", "path", "terraform"})
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][\w-]*)\r?\n(.*?)\r?\n[ \t]*\2\s*\Z", re.DOTALL)


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or value is None:
        raise _Opaque
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    number = float(text)
    return int(text) if re.fullmatch(r"-?\d+", text) else number


def _normal(value: float) -> int | float:
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2**53 else value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise _Opaque


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(_normal(value))
    raise _Opaque  # null, lists and objects do not convert to strings


def _sequence(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _Opaque
    return value


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Opaque
    return value


def _toset(value: Any) -> list[Any]:
    items = list(dict.fromkeys(_known(item) for item in _sequence(value)))
    return sorted(items) if all(isinstance(item, str) for item in items) else items


def _lookup(mapping: Any, key: Any, *default: Any) -> Any:
    found = _mapping(mapping)
    return found[key] if key in found or not default else default[0]


def _coalesce(*values: Any) -> Any:
    return next(_known(value) for value in values if value not in (None, ""))


def _join(separator: Any, items: Any) -> str:
    return _string(separator).join(_string(_known(item)) for item in _sequence(items))


def _sensitive(value: Any) -> Any:
    raise _Tainted


FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "abs": lambda n: abs(_number(n)),
    "ceil": lambda n: math.ceil(_number(n)),
    "coalesce": _coalesce,
    "concat": lambda *lists: [item for items in lists for item in _sequence(items)],
    "contains": lambda items, value: value in _sequence(items),
    "floor": lambda n: math.floor(_number(n)),
    "join": _join,
    "keys": lambda mapping: sorted(_mapping(mapping)),
    "length": lambda value: len(value if isinstance(value, str | list | dict) else _sequence(value)),
    "lookup": _lookup,
    "lower": lambda text: _string(text).lower(),
    "max": lambda *numbers: max(_number(n) for n in numbers),
    "merge": lambda *maps: {key: value for mapping in maps for key, value in _mapping(mapping).items()},
    "min": lambda *numbers: min(_number(n) for n in numbers),
    "range": lambda *bounds: list(range(*(int(_number(b)) for b in bounds))),
    "sensitive": _sensitive,
    "split": lambda separator, text: _string(text).split(_string(separator)),
    "tobool": _bool,
    "tolist": lambda value: list(_sequence(value)),
    "tomap": lambda value: dict(_mapping(value)),
    "tonumber": _number,
    "toset": _toset,
    "tostring": _string,
    "trimspace": lambda text: _string(text).strip(),
    "upper": lambda text: _string(text).upper(),
    "values": lambda mapping: [_mapping(mapping)[key] for key in sorted(mapping)],
}
_OPERATORS: Mapping[str, Callable[[Any, Any], Any]] = {
    "||": lambda a, b: _bool(a) or _bool(b),
    "&&": lambda a, b: _bool(a) and _bool(b),
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: _number(a) < _number(b),
    ">": lambda a, b: _number(a) > _number(b),
    "<=": lambda a, b: _number(a) <= _number(b),
    ">=": lambda a, b: _number(a) >= _number(b),
    "+": lambda a, b: _normal(_number(a) + _number(b)),
    "-": lambda a, b: _normal(_number(a) - _number(b)),
    "*": lambda a, b: _normal(_number(a) * _number(b)),
    "/": lambda a, b: _normal(_number(a) / _number(b)),
    "%": lambda a, b: _normal(_number(a) % _number(b)),
}


def _end_of_quoted(text: str, start: int) -> int:
    """The index after the string literal opening at ``start`` (interpolations may hold quotes)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        elif text.startswith(("${", "%{"), i):
            i = _end_of_braces(text, i + 2)
        else:
            i += 1
    raise _Opaque


def _end_of_braces(text: str, i: int) -> int:
    """The index after the ``}`` closing a brace opened just before ``i``."""
    depth = 1
    while i < len(text):
        if text[i] == '"':
            i = _end_of_quoted(text, i)
            continue
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
        if depth == 0:
            return i
    raise _Opaque


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        match = _TOKEN.match(text, i)
        if match is None:
            raise _Opaque
        kind = match.lastgroup or ""
        if kind == "quote":
            end = _end_of_quoted(text, i)
            found.append(("string", text[i + 1 : end - 1]))
            i = end
            continue
        if kind != "space":
            found.append((kind, match.group()))
        i = match.end()
    return found


def _opaque(scope: _Scope) -> Any:
    raise _Opaque


def _constant(value: Any) -> Node:
    return lambda scope: value


class _Parser:
    """A precedence-climbing parser of the HCL expressions we evaluate, building closures over a scope."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def parse(self) -> Node:
        node = self.expression()
        if self.position != len(self.tokens):
            raise _Opaque
        return node

    def peek(self) -> str:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else ""

    def take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise _Opaque
        self.position += 1
        return self.tokens[self.position - 1]

    def accept(self, text: str) -> bool:
        if self.position < len(self.tokens) and self.tokens[self.position] in (("op", text), ("name", text)):
            self.position += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise _Opaque

    def expression(self) -> Node:
        condition = self.binary(0)
        if not self.accept("?"):
            return condition
        yes = self.expression()
        self.expect(":")
        no = self.expression()
        return lambda scope: yes(scope) if _bool(condition(scope)) else no(scope)

    def binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while (
            self.tokens[self.position : self.position + 1]
            and self.tokens[self.position][0] == "op"
            and (self.peek() in _LEVELS[level])
        ):
            operator = _OPERATORS[self.take()[1]]
            right = self.binary(level + 1)
            left = functools.partial(lambda op, a, b, scope: op(a(scope), b(scope)), operator, left, right)
        return left

    def unary(self) -> Node:
        if self.accept("!"):
            operand = self.unary()
            return lambda scope: not _bool(operand(scope))
        if self.accept("-"):
            operand = self.unary()
            return lambda scope: -_number(operand(scope))
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.accept("."):
                kind, name = self.take()
                if kind not in ("name", "number"):
                    raise _Opaque
                node = functools.partial(lambda inner, key, scope: _item(inner(scope), key), node, name)
            elif self.accept("["):
                index = self.expression()
                self.expect("]")
                node = functools.partial(lambda inner, key, scope: _item(inner(scope), key(scope)), node, index)
            elif self.peek() in ("[*]", ".*"):
                raise _Opaque
            else:
                return node

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            return _constant(_number(text))
        if kind == "string":
            return _compile_template(text, quoted=True)
        if kind == "name":
            return self.name(text)
        if text == "(":
            node = self.expression()
            self.expect(")")
            return node
        if text == "[":
            return self.sequence()
        if text == "{":
            return self.mapping()
        raise _Opaque

    def name(self, text: str) -> Node:
        if text in ("true", "false", "null"):
            return _constant({"true": True, "false": False, "null": None}[text])
        if self.accept("("):
            return self.call(text)
        if text in _ROOTS:
            self.expect(".")
            kind, name = self.take()
            if kind != "name":
                raise _Opaque
            return lambda scope: _known(scope.value(text, name))
        return _opaque  # another resource, a data source, a for expression's symbol...

    def call(self, function: str) -> Node:
        arguments = self.items(")")
        implementation = FUNCTIONS.get(function)
        if implementation is None:
            return _opaque
        return lambda scope: implementation(*(_known(argument(scope)) for argument in arguments))

    def items(self, closing: str) -> list[Node]:
        found: list[Node] = []
        while not self.accept(closing):
            found.append(self.expression())
            if not self.accept(","):
                self.expect(closing)
                break
        return found

    def sequence(self) -> Node:
        items = self.items("]")
        return lambda scope: [item(scope) for item in items]

    def mapping(self) -> Node:
        pairs: list[tuple[Node, Node]] = []
        while not self.accept("}"):
            kind, text = self.tokens[self.position] if self.position < len(self.tokens) else ("", "")
            if kind == "name" and self.tokens[self.position + 1 : self.position + 2] in ([("op", "=")], [("op", ":")]):
                self.position += 1
                key = _constant(text)
            else:
                key = self.expression()
            if not (self.accept("=") or self.accept(":")):
                raise _Opaque
            pairs.append((key, self.expression()))
            self.accept(",")
        return lambda scope: {_string(key(scope)): value(scope) for key, value in pairs}


def _item(container: Any, key: Any) -> Any:
    if isinstance(container, dict):
        return _known(container[_string(key)])
    if isinstance(container, list) and int(_number(key)) >= 0:
        return _known(container[int(_number(key))])
    raise _Opaque


@functools.lru_cache(maxsize=CACHE_SIZE * 4)
def _compile(text: str) -> Node:
    """A closure computing the expression ``text`` in a scope; raises :class:`_Opaque` when that cannot be."""
    try:
        return _Parser(text).parse()
    except (_Opaque, ValueError):
        return _opaque


@functools.lru_cache(maxsize=CACHE_SIZE * 4)
def _compile_template(raw: str, *, quoted: bool) -> Node:
    """A string template; a template that is a single interpolation gives that value as is, as in HCL."""
    try:
        parts = _template_parts(raw, quoted=quoted)
    except _Opaque:
        return _opaque
    if len(parts) == 1 and not isinstance(parts[0], str):
        return parts[0]
    if all(isinstance(part, str) for part in parts):
        return _constant("".join(str(part) for part in parts))
    return lambda scope: "".join(part if isinstance(part, str) else _string(_known(part(scope))) for part in parts)


def _template_parts(raw: str, *, quoted: bool) -> list[str | Node]:
    parts: list[str | Node] = []
    literal: list[str] = []
    i = 0
    while i < len(raw):
        if raw.startswith(("$${", "%%{"), i):
            literal.append(raw[i + 1 : i + 3])
            i += 3
        elif raw.startswith("%{", i):
            raise _Opaque  # template directives (if/for)
        elif raw.startswith("${", i):
            end = _end_of_braces(raw, i + 2)
            if literal:
                parts.append(_unescape("".join(literal)) if quoted else "".join(literal))
                literal = []
            parts.append(_compile(raw[i + 2 : end - 1].strip().strip("~").strip()))
            i = end
        else:
            literal.append(raw[i])
            i += 1
    if literal or not parts:
        parts.append(_unescape("".join(literal)) if quoted else "".join(literal))
    return parts


def _unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        return chr(int(code[1:], 16)) if len(code) > 1 else _ESCAPES.get(code, match.group())

    return _ESCAPE.sub(replace, text)


@functools.lru_cache(maxsize=CACHE_SIZE * 4)
def _compile_value(raw: str) -> Node:
    """The node of an argument string as python-hcl2 gives it: a heredoc, a template, or ``${expression}``."""
    heredoc = _HEREDOC.match(raw)
    if heredoc is None:
        return _compile_template(raw, quoted=False)
    lines = heredoc.group(3).split("\n")
    if heredoc.group(1):
        indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
        lines = [line[indent:] for line in lines]
    return _compile_template("\n".join(lines) + "\n", quoted=False)


# --- scopes and evaluation ------------------------------------------------------------------------------------

_NAMES = re.compile(r"(?<![\w.-])(var|local|module|each|count)\.([A-Za-z_][\w-]*)(?:\.([A-Za-z_][\w-]*))?")
_REFERENCE = re.compile(
    r"""(?<![\w.\-"])
        (?P<data>data\.)?(?P<type>[A-Za-z_][\w-]*)\.(?P<name>[A-Za-z_][\w-]*)
        (?:\[\s*(?:(?P<index>\d+)|"(?P<key>[^"]*)")\s*\]|\[[^\]]*\]|\.\*)?
        (?:\.(?P<attribute>[A-Za-z_][\w-]*))?""",
    re.VERBOSE,
)


@dataclasses.dataclass(frozen=True)
class _Instance:
    key: Key = None
    each: tuple[Any, Any] | None = None
    count: int | None = None
    unknown: bool = False


@dataclasses.dataclass(frozen=True)
class _Scope:
    """What an expression can read: variables, locals and module outputs (``lookup``), and instance symbols."""

    lookup: Callable[[str, str], Any]
    prefix: str = ""
    module_dir: str = "."
    instance: _Instance = _Instance()

    def value(self, root: str, name: str) -> Any:
        if root in ("var", "local", "module"):
            return self.lookup(root, name)
        if root == "each" and self.instance.each is not None and name in ("key", "value"):
            return self.instance.each[0] if name == "key" else self.instance.each[1]
        if root == "count" and self.instance.count is not None and name == "index":
            return self.instance.count
        if root == "path" and name in ("module", "root", "cwd"):
            return self.module_dir if name == "module" else "."
        if root == "terraform" and name == "workspace":
            return "default"
        raise _Opaque

    def bind(self, instance: _Instance) -> _Scope:
        return dataclasses.replace(self, instance=instance)


def _no_lookup(root: str, name: str) -> Any:
    raise _Opaque


_LITERAL = _Scope(_no_lookup)


def _evaluate(raw: Any, scope: _Scope) -> Any:
    """The value of an argument as python-hcl2 gives it (lists and objects evaluate item by item)."""
    if isinstance(raw, str):
        return _evaluate_string(raw, scope) if ("{" in raw or raw.startswith("<<")) else raw
    if isinstance(raw, list):
        return [_evaluate(item, scope) for item in raw]
    if isinstance(raw, dict):
        return {key: _evaluate(value, scope) for key, value in raw.items()}
    return raw


def _evaluate_string(raw: str, scope: _Scope) -> Any:
    try:
        return _compile_value(raw)(scope)
    except (_Opaque, ArithmeticError, LookupError, TypeError, ValueError, StopIteration):
        inputs = _inputs(raw, scope)
        refs = {*_references(raw, scope.prefix), *(ref for value in inputs.values() for ref in _refs_in(value))}
        return Unknown(raw, _digest(inputs), frozenset(refs))
    except _Tainted:
        return Sensitive(_digest([raw, _inputs(raw, scope)]))


def _inputs(raw: str, scope: _Scope) -> dict[str, Any]:
    """The values an expression reads, by name: what decides whether an unknown value moved."""
    found: dict[str, Any] = {}
    for root, name, attribute in _NAMES.findall(raw):
        try:
            value = scope.value(root, name)
        except (_Opaque, _Undeclared):
            continue
        if root == "module" and attribute and isinstance(value, dict) and attribute in value:
            found[f"module.{name}.{attribute}"] = value[attribute]
        else:
            found[f"{root}.{name}"] = value
    return found


def _references(raw: str, prefix: str) -> Iterator[Ref]:
    for match in _REFERENCE.finditer(raw):
        if match["type"] in _ROOTS or (match["type"] in ("self", "data") and not match["data"]):
            continue
        key: Key = int(match["index"]) if match["index"] else match["key"]
        address = f"{prefix}{match['data'] or ''}{match['type']}.{match['name']}"
        yield Ref(address, key, match["attribute"])


# --- files ----------------------------------------------------------------------------------------------------

_BLOCK_LINE = re.compile(
    r'^[ \t]*(resource|data|module|output|variable)[ \t]+"?([\w-]+)"?(?:[ \t]+"?([\w-]+)"?)?', re.M
)


@dataclasses.dataclass(frozen=True)
class _Block:
    kind: str  # resource, data, module, output, variable, locals, moved
    labels: tuple[str, ...]
    body: Mapping[str, Any]
    line: int | None = None


@dataclasses.dataclass(frozen=True)
class _FileBlocks:
    """The blocks of one file, and the variables, locals and modules its text names."""

    digest: str
    blocks: tuple[_Block, ...]
    names: frozenset[tuple[str, str]]


@functools.lru_cache(maxsize=CACHE_SIZE)
def _extract(digest: str, text: str) -> _FileBlocks:
    """The blocks of a ``.tf`` file, with the line each starts on; cached by content hash."""
    document = hcl.parse(text)
    lines = _block_lines(text)
    blocks: list[_Block] = []
    for kind in ("resource", "data"):
        for entry in document.get(kind, ()):
            for type_, named in entry.items():
                for name, body in named.items():
                    blocks.append(_Block(kind, (type_, name), body, lines.get((kind, type_, name))))
    for kind in ("module", "output", "variable"):
        for entry in document.get(kind, ()):
            for name, body in entry.items():
                blocks.append(_Block(kind, (name,), body, lines.get((kind, name, None))))
    blocks.extend(_Block("locals", (), body) for body in document.get("locals", ()))
    blocks.extend(_Block("moved", (), body) for body in document.get("moved", ()))
    names = frozenset((root, name) for root, name, _ in _NAMES.findall(text) if root in ("var", "local", "module"))
    return _FileBlocks(digest, tuple(blocks), names)


def _block_lines(text: str) -> dict[tuple[str, str, str | None], int]:
    found: dict[tuple[str, str, str | None], int] = {}
    line, position = 1, 0
    for match in _BLOCK_LINE.finditer(text):
        line += text.count("\n", position, match.start())
        position = match.start()
        found.setdefault((match[1], match[2], match[3]), line)
    return found


def _file_blocks(path: str, text: str) -> _FileBlocks:
    try:
        return _extract(hashlib.sha256(text.encode()).hexdigest(), text)
    except (lark.exceptions.LarkError, ValueError) as e:
        error = hcl.check(path, text)
        raise ConfigurationError(str(error or f"{path}: {e}"), reason=Reasons.INVALID_HCL) from e


@dataclasses.dataclass(frozen=True)
class _FileJob:
    """One file evaluated in one module instance: compared by content and inputs, so equal jobs share results."""

    path: str
    digest: str
    module: str
    module_dir: str
    inputs: str  # digest of the values the file's text names
    blocks: _FileBlocks = dataclasses.field(compare=False)
    values: Mapping[str, Any] = dataclasses.field(compare=False)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _file_resources(job: _FileJob) -> tuple[tuple[Resource, ...], tuple[str, ...]]:
    """The resource instances one file declares, and warnings; cached by content and inputs."""

    def lookup(root: str, name: str) -> Any:
        if f"{root}.{name}" not in job.values:
            raise _Undeclared(f"{job.path}: reference to undeclared {root}.{name}")
        return job.values[f"{root}.{name}"]

    prefix = f"{job.module}." if job.module else ""
    scope = _Scope(lookup, prefix, job.module_dir)
    found: list[Resource] = []
    warnings: list[str] = []
    for block in job.blocks.blocks:
        if block.kind in ("resource", "data"):
            where = f"{job.path}:{block.line or '?'}: {prefix}{'data.' if block.kind == 'data' else ''}"
            instances, warning = _expand(block.body, scope, where + ".".join(block.labels))
            warnings.extend(warning)
            found.extend(_resource(job, block, scope.bind(instance)) for instance in instances)
    return tuple(found), tuple(warnings)


def _resource(job: _FileJob, block: _Block, scope: _Scope) -> Resource:
    type_, name = block.labels
    mode: Mode = "data" if block.kind == "data" else "managed"
    base = f"{scope.prefix}{'data.' if mode == 'data' else ''}{type_}.{name}"
    lifecycle = _first(block.body.get("lifecycle"))
    triggers = _references(" ".join(_items(lifecycle.get("replace_triggered_by"))), scope.prefix)
    return Resource(
        address=base + _key_suffix(scope.instance.key),
        mode=mode,
        type=type_,
        name=name,
        attributes={k: _evaluate(v, scope) for k, v in block.body.items() if k not in RESOURCE_META},
        module=job.module,
        key=scope.instance.key,
        file=job.path,
        line=block.line,
        unknown_count=scope.instance.unknown,
        ignore_changes=_ignored(lifecycle.get("ignore_changes")),
        replace_triggered_by=tuple(dict.fromkeys(triggers)),
    )


def _first(blocks: Any) -> Mapping[str, Any]:
    return blocks[0] if isinstance(blocks, list) and blocks and isinstance(blocks[0], dict) else {}


def _ignored(raw: Any) -> tuple[str, ...]:
    """Argument names of ``ignore_changes`` (``all``, ``[tags, name["x"]]`` → ``("tags", "name")``)."""
    names: list[str] = []
    for item in _items(raw):
        for part in item.removeprefix("${").removesuffix("}").strip("[] ").split(","):
            name = re.match(r"\s*([A-Za-z_][\w-]*)", part)
            names += [name[1]] if name else []
    return tuple(dict.fromkeys(names))


def _items(raw: Any) -> list[str]:
    return [str(item) for item in raw] if isinstance(raw, list) else [raw] if isinstance(raw, str) else []


def _key_suffix(key: Key) -> str:
    return "" if key is None else f"[{json.dumps(key)}]"


def _expand(body: Mapping[str, Any], scope: _Scope, where: str) -> tuple[list[_Instance], list[str]]:
    """The instances ``count`` or ``for_each`` make; one flagged instance when the number is not known."""
    if "count" in body:
        count = _evaluate(body["count"], scope)
        if isinstance(count, int | float) and not isinstance(count, bool) and count >= 0 and count == int(count):
            return [_Instance(key=i, count=i) for i in range(int(count))], []
        return [_Instance(unknown=True)], [f"{where}: count is not known before apply; planned as one instance"]
    if "for_each" in body:
        each = _evaluate(body["for_each"], scope)
        if isinstance(each, dict):
            return [_Instance(key=key, each=(key, each[key])) for key in sorted(each)], []
        if isinstance(each, list) and all(isinstance(item, str) for item in each):
            return [_Instance(key=key, each=(key, key)) for key in sorted(set(each))], []
        return [_Instance(unknown=True)], [f"{where}: for_each is not known before apply; planned as one instance"]
    return [_Instance()], []


# --- modules --------------------------------------------------------------------------------------------------


class _Run:
    """One call of :func:`configuration`: the files by directory and the warnings found so far."""

    def __init__(self, files: Mapping[str, str], root: str) -> None:
        self.files, self.root = files, root
        self.by_dir: dict[str, list[str]] = {}
        for path in sorted(files):
            self.by_dir.setdefault(_directory(path), []).append(path)
        self.warnings: list[str] = []

    def module_files(self, directory: str) -> list[tuple[str, _FileBlocks]]:
        paths = [path for path in self.by_dir.get(directory, ()) if path.endswith(".tf")]
        return [(posixpath.normpath(path), _file_blocks(path, self.files[path])) for path in paths]

    def tfvars(self, directory: str) -> dict[str, Any]:
        """Variables of ``terraform.tfvars`` then ``*.auto.tfvars`` (later files win), as terraform reads them."""
        names = self.by_dir.get(directory, ())
        ordered = [p for p in names if posixpath.basename(p) == "terraform.tfvars"]
        ordered += sorted(p for p in names if p.endswith(".auto.tfvars"))
        found: dict[str, Any] = {}
        for path in ordered:
            try:
                document = hcl.parse(self.files[path])
            except (lark.exceptions.LarkError, ValueError) as e:
                raise ConfigurationError(f"{path}: {e}", reason=Reasons.INVALID_HCL) from e
            found.update({name: _evaluate(raw, _LITERAL) for name, raw in document.items()})
        return found


def _directory(path: str) -> str:
    directory = posixpath.dirname(posixpath.normpath(path))
    return directory or "."


class _Module:
    """One instance of a module: its declarations, and its variables, locals and calls evaluated on demand."""

    def __init__(self, run: _Run, directory: str, address: str, inputs: Mapping[str, Any], depth: int) -> None:
        if depth > MAX_MODULE_DEPTH:
            raise ConfigurationError(f"{address}: modules nest deeper than {MAX_MODULE_DEPTH} levels")
        self.run, self.directory, self.address, self.depth = run, directory, address, depth
        self.prefix = f"{address}." if address else ""
        self.files = run.module_files(directory)
        if not self.files:
            raise ConfigurationError(f"{address or 'the root module'}: no .tf files in {directory!r}")
        self.declared: dict[tuple[str, str], tuple[_Block, str]] = {}
        self.locals: dict[str, Any] = {}
        for path, file in self.files:
            for block in file.blocks:
                self._declare(block, path)
        self._check_inputs(inputs)
        self.inputs = inputs
        self.values: dict[tuple[str, str], Any] = {}
        self.pending: set[tuple[str, str]] = set()
        self.calls: dict[str, tuple[str, list[tuple[_Instance, _Module]]] | None] = {}

    def _declare(self, block: _Block, path: str) -> None:
        if block.kind == "locals":
            for name, raw in block.body.items():
                if name in self.locals:
                    raise ConfigurationError(f"{path}: duplicate local value {self.prefix}local.{name}")
                self.locals[name] = raw
        elif block.kind != "moved":
            key = (block.kind, ".".join(block.labels))
            if key in self.declared:
                raise ConfigurationError(f"{path}:{block.line or '?'}: duplicate {block.kind} {self.prefix}{key[1]}")
            self.declared[key] = (block, path)

    def _check_inputs(self, inputs: Mapping[str, Any]) -> None:
        where = self.address or "the root module"
        for name in inputs:
            if ("variable", name) not in self.declared:
                if self.address:
                    raise ConfigurationError(f"{where}: no variable {name!r} is declared for this argument")
                self.run.warnings.append(f"{where}: variable {name!r} is given but not declared; ignored")
        for (kind, name), (block, path) in self.declared.items():
            if kind == "variable" and "default" not in block.body and name not in inputs:
                raise ConfigurationError(f"{path}:{block.line or '?'}: no value for required variable {name!r}")

    def scope(self) -> _Scope:
        return _Scope(self.lookup, self.prefix, posixpath.relpath(self.directory, self.run.root))

    def lookup(self, root: str, name: str) -> Any:
        key = (root, name)
        if key in self.values:
            return self.values[key]
        if key in self.pending:
            raise ConfigurationError(f"{self.address or 'the root module'}: {root}.{name} depends on itself")
        self.pending.add(key)
        try:
            self.values[key] = self._compute(root, name)
        finally:
            self.pending.discard(key)
        return self.values[key]

    def _compute(self, root: str, name: str) -> Any:
        if root == "local" and name in self.locals:
            return _evaluate(self.locals[name], self.scope())
        if root == "var" and ("variable", name) in self.declared:
            return self._variable(name)
        if root == "module" and ("module", name) in self.declared:
            return self._call_value(name)
        if root == "output" and ("output", name) in self.declared:
            block = self.declared[("output", name)][0]
            value = _evaluate(block.body.get("value"), self.scope())
            return _hidden(value) if block.body.get("sensitive") is True else value
        raise _Undeclared(f"{self.address or 'the root module'}: reference to undeclared {root}.{name}")

    def _variable(self, name: str) -> Any:
        block = self.declared[("variable", name)][0]
        value = self.inputs[name] if name in self.inputs else _evaluate(block.body.get("default"), _LITERAL)
        if not self.address and isinstance(value, str):
            value = _typed(value, str(block.body.get("type", "string")))
        return _hidden(value) if block.body.get("sensitive") is True else value

    def instances(self, name: str) -> tuple[str, list[tuple[_Instance, _Module]]] | None:
        """How a module call expands (single, count, for_each) and its instances; None for a remote source."""
        if name not in self.calls:
            self.calls[name] = self._call(name)
        return self.calls[name]

    def _call(self, name: str) -> tuple[str, list[tuple[_Instance, _Module]]] | None:
        block, path = self.declared[("module", name)]
        where = f"{path}:{block.line or '?'}: {self.prefix}module.{name}"
        source = str(block.body.get("source", ""))
        if not source.startswith(("./", "../")):
            self.run.warnings.append(f"{where}: source {source!r} is not a local path; its resources are not planned")
            return None
        directory = posixpath.normpath(posixpath.join(self.directory, source))
        instances, warnings = _expand(block.body, self.scope(), where)
        self.run.warnings.extend(warnings)
        kind = "count" if "count" in block.body else "for_each" if "for_each" in block.body else "single"
        children = []
        for instance in instances:
            scope = self.scope().bind(instance)
            inputs = {k: _evaluate(v, scope) for k, v in block.body.items() if k not in MODULE_META}
            address = f"{self.prefix}module.{name}{_key_suffix(instance.key)}"
            children.append((instance, _Module(self.run, directory, address, inputs, self.depth + 1)))
        return ("single" if instances and instances[0].unknown else kind), children

    def _call_value(self, name: str) -> Any:
        """``module.<name>``: an object of outputs, a list of them (count) or a map of them (for_each)."""
        expanded = self.instances(name)
        if expanded is None:
            return Unknown(f"module.{name}", _digest(self.declared[("module", name)][0].body), frozenset())
        kind, children = expanded
        objects = [(instance.key, child.output_object()) for instance, child in children]
        if kind == "single":
            return objects[0][1]
        return [value for _, value in objects] if kind == "count" else dict(objects)

    def output_object(self) -> dict[str, Any]:
        return {name: self.lookup("output", name) for kind, name in self.declared if kind == "output"}

    def resources(self) -> Iterator[Resource]:
        for path, file in self.files:
            values = self._file_inputs(file)
            job = _FileJob(path, file.digest, self.address, self.scope().module_dir, _digest(values), file, values)
            found, warnings = _file_resources(job)
            self.run.warnings.extend(warnings)
            yield from found
        for child in self.children():
            yield from child.resources()

    def _file_inputs(self, file: _FileBlocks) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for root, name in sorted(file.names):
            try:
                found[f"{root}.{name}"] = self.lookup(root, name)
            except _Undeclared:
                continue
        return found

    def children(self) -> Iterator[_Module]:
        """The instances of every local module this one calls."""
        for kind, name in list(self.declared):
            expanded = self.instances(name) if kind == "module" else None
            yield from (child for _, child in expanded[1]) if expanded else ()

    def moves(self) -> Iterator[tuple[str, str]]:
        """(from, to) of the ``moved`` blocks of this module and the modules it calls, with their prefixes."""
        for _, file in self.files:
            for block in (block for block in file.blocks if block.kind == "moved"):
                source, target = (str(block.body.get(end, "")).strip("${}") for end in ("from", "to"))
                yield f"{self.prefix}{source}", f"{self.prefix}{target}"
        for child in self.children():
            yield from child.moves()


def _hidden(value: Any) -> Any:
    return value if isinstance(value, Unknown | Sensitive) else Sensitive(_digest(value))


def _typed(value: str, type_: str) -> Any:
    """A variable given as text, converted by its declared type as ``-var`` does."""
    constraint = type_.removeprefix("${").removesuffix("}").strip()
    if constraint == "number":
        try:
            return _number(value)
        except (_Opaque, ValueError):
            return value
    if constraint == "bool" and value in ("true", "false"):
        return value == "true"
    if constraint.startswith(("list", "set", "map", "object", "tuple")):
        converted = _evaluate_string("${" + value + "}", _LITERAL)
        return value if isinstance(converted, Unknown) else converted
    return value


def configuration(files: Mapping[str, str], *, path: str = ".", variables: Mapping[str, Any] = {}) -> Configuration:
    """What the root module at ``path`` (and the local modules it calls) declares, evaluated with ``variables``.

    ``files`` maps repository paths to text; only ``.tf`` files of the module directories and the root's
    ``terraform.tfvars``/``*.auto.tfvars`` are read. Raises :class:`ConfigurationError` for invalid HCL, a
    required variable without value, a reference to an undeclared name, a cycle, or a missing local module.
    """
    root = posixpath.normpath(path)
    run = _Run(files, root)
    module = _Module(run, root, "", {**run.tfvars(root), **variables}, 0)
    resources: dict[str, Resource] = {}
    for resource in module.resources():
        if resource.address in resources:
            raise ConfigurationError(f"{resource.file}:{resource.line or '?'}: duplicate {resource.address}")
        resources[resource.address] = resource
    outputs = {}
    for kind, name in module.declared:
        if kind == "output":
            block = module.declared[(kind, name)][0]
            outputs[name] = Output(name, module.lookup("output", name), block.body.get("sensitive") is True)
    return Configuration(resources, outputs, tuple(module.moves()), tuple(dict.fromkeys(run.warnings)))


# --- plans ----------------------------------------------------------------------------------------------------


def plan(current: Configuration, previous: Configuration | None = None) -> plans.PlanResult:
    """The changes taking ``previous`` (the last applied configuration; None when nothing was applied) to
    ``current``, as terraform would plan them. ``plan(Configuration(), previous)`` plans a destroy."""
    before = previous or Configuration()
    differ = _Differ(current.resources, _moved(before.resources, current))
    differ.propagate()
    changes = tuple(differ.change(address) for address in sorted(differ.actions))
    outputs = _output_changes(current.outputs, before.outputs, differ)
    text = _text(changes, outputs, current, differ)
    return plans.PlanResult(changes, outputs, text, ENGINE, ENGINE_VERSION)


def _moved(previous: Mapping[str, Resource], current: Configuration) -> dict[str, Resource]:
    """The previous resources under their current addresses: ``moved`` blocks, then ``a`` ↔ ``a[0]`` when
    ``count`` was added or removed (terraform moves those implicitly)."""
    resources = dict(previous)
    for source, target in current.moves:
        for address in [a for a in resources if a == source or a.startswith((source + "[", source + "."))]:
            if target + address[len(source) :] not in resources:
                resources[target + address[len(source) :]] = resources.pop(address)
    for address, resource in current.resources.items():
        other = resource.base if resource.key == 0 else f"{address}[0]" if resource.key is None else None
        if other and address not in resources and other in resources and other not in current.resources:
            resources[address] = resources.pop(other)
    return resources


class _Differ:
    """Actions per address: first from each resource's own arguments, then spread along references."""

    def __init__(self, current: Mapping[str, Resource], previous: Mapping[str, Resource]) -> None:
        self.current, self.previous = current, previous
        self.actions: dict[str, plans.Action] = {}
        self.changed: dict[str, set[str]] = {}
        self.forced: set[str] = set()  # by replace_triggered_by
        self.deferred: set[str] = set()  # data sources read during apply
        self.instances: dict[str, list[str]] = {}
        self.refs: dict[str, dict[str, frozenset[Ref]]] = {}
        self.dependents: dict[str, set[str]] = {}
        for address, resource in current.items():
            self.instances.setdefault(resource.base, []).append(address)
            self._diff(resource, previous.get(address))
            self.refs[address] = {name: frozenset(_refs_in(value)) for name, value in resource.attributes.items()}
            for ref in {*resource.replace_triggered_by, *(r for refs in self.refs[address].values() for r in refs)}:
                self.dependents.setdefault(ref.address, set()).add(address)
        for address, resource in previous.items():
            if address not in current and resource.mode == "managed":
                self.actions[address] = "delete"

    def _diff(self, resource: Resource, old: Resource | None) -> None:
        address = resource.address
        self.changed[address] = set()
        if resource.mode == "data":
            self.actions[address] = "read"
        elif old is None or old.mode != "managed":
            self.actions[address] = "create"
        else:
            names = resource.attributes.keys() | old.attributes.keys()
            self.changed[address] = {
                name
                for name in names
                if resource.attributes.get(name) != old.attributes.get(name) and not _ignores(resource, name)
            }
            self.actions[address] = self._action(resource)

    def _action(self, resource: Resource) -> plans.Action:
        changed = self.changed[resource.address]
        if resource.address in self.forced or changed & REPLACE_ON.get(resource.type, frozenset()):
            return "replace"
        return "update" if changed else "no-op"

    def propagate(self) -> None:
        queue = [address for address, action in self.actions.items() if action in ("create", "update", "replace")]
        while queue:
            target = self.current.get(queue.pop())
            for dependent in sorted(self.dependents.get(target.base, ())) if target else ():
                if self._revisit(self.current[dependent]):
                    queue.append(dependent)

    def _revisit(self, resource: Resource) -> bool:
        """Whether a reference to something changing changes ``resource`` further."""
        address = resource.address
        if self.actions[address] == "read":
            return self._defer(resource)
        if self.actions[address] not in ("no-op", "update"):
            return False
        grown = {
            name
            for name, refs in self.refs[address].items()
            if name not in self.changed[address] and not _ignores(resource, name) and any(map(self.moves, refs))
        }
        if any(map(self.moves, resource.replace_triggered_by)):
            self.forced.add(address)
        elif not grown:
            return False
        self.changed[address] |= grown
        self.actions[address] = self._action(resource)
        return True

    def _defer(self, data: Resource) -> bool:
        """A data source that reads a resource with changes is read during apply, as terraform (0.13 on) does:
        everything it gives is unknown until then."""
        refs = [ref for refs in self.refs[data.address].values() for ref in refs]
        if data.address in self.deferred or not any(self.moves(ref, pending=True) for ref in refs):
            return False
        self.deferred.add(data.address)
        return True

    def moves(self, ref: Ref, *, pending: bool = False) -> bool:
        """Whether the value ``ref`` reads changes in this plan (``pending``: whether its resource changes)."""
        for address in self.targets(ref):
            action = self.actions[address]
            if action in ("create", "replace") or address in self.deferred:
                return True
            if action == "update" and (pending or self._recomputed(self.current[address], ref.attribute)):
                return True
        return False

    def targets(self, ref: Ref) -> Iterator[str]:
        for address in self.instances.get(ref.address, ()):
            if ref.key is None or self.current[address].key == ref.key:
                yield address

    def _recomputed(self, target: Resource, attribute: str | None) -> bool:
        changed = self.changed[target.address]
        if attribute is None or attribute in target.attributes:
            return attribute is None or attribute in changed
        follows = {**DERIVED["*"], **DERIVED.get(target.type, {})}.get(attribute)
        return follows is not None and follows in changed

    def change(self, address: str) -> plans.ResourceChange:
        action = self.actions[address]
        new, old = self.current.get(address), self.previous.get(address)
        resource = new or old
        assert resource is not None  # every address with an action is in one of them
        return plans.ResourceChange(
            address=address,
            type=resource.type,
            name=resource.name,
            action=action,
            before=_shown(old.attributes) if old is not None and action != "read" else None,
            after=_shown(new.attributes) if new is not None else None,
            module=resource.module,
            file=resource.file,
            line=resource.line,
        )


def _ignores(resource: Resource, name: str) -> bool:
    return name in resource.ignore_changes or "all" in resource.ignore_changes


def _output_changes(
    current: Mapping[str, Output], previous: Mapping[str, Output], differ: _Differ
) -> dict[str, plans.Action]:
    found: dict[str, plans.Action] = {}
    for name in sorted(current.keys() | previous.keys()):
        new, old = current.get(name), previous.get(name)
        if old is None:
            found[name] = "create"
        elif new is None:
            found[name] = "delete"
        elif (new.value, new.sensitive) != (old.value, old.sensitive) or any(map(differ.moves, _refs_in(new.value))):
            found[name] = "update"
        else:
            found[name] = "no-op"
    return found


def _shown(value: Any) -> Any:
    """A value as a plan shows it: unknowns as ``(known after apply)``, sensitive values redacted."""
    if isinstance(value, Unknown):
        return KNOWN_AFTER_APPLY
    if isinstance(value, Sensitive):
        return plans.SENSITIVE
    if isinstance(value, list):
        return [_shown(item) for item in value]
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    return value


_SYMBOLS: Mapping[str, tuple[str, str]] = {
    "create": ("+", "will be created"),
    "delete": ("-", "will be destroyed"),
    "update": ("~", "will be updated in-place"),
    "replace": ("-/+", "must be replaced"),
}


def _text(
    changes: Iterable[plans.ResourceChange],
    outputs: Mapping[str, plans.Action],
    current: Configuration,
    differ: _Differ,
) -> str:
    """The plan in terraform's words, compact: changed arguments only for updates and replacements."""
    lines: list[str] = []
    for change in changes:
        if change.action in _SYMBOLS:
            symbol, verb = _SYMBOLS[change.action]
            lines += [f"  # {change.address} {verb}", f'  {symbol} resource "{change.type}" "{change.name}" {{']
            lines += [f"      {line}" for line in _argument_lines(change, differ)]
            lines += ["    }", ""]
    summary = plans.summarize(changes)
    lines.append(f"Plan: {summary.line()}" if not summary.empty else "No changes.")
    changed_outputs = {name: action for name, action in outputs.items() if action != "no-op"}
    if changed_outputs:
        lines += ["", "Changes to Outputs:"]
        for name, action in changed_outputs.items():
            output = current.outputs.get(name)
            value = _rendered(_shown(output.value)) if output is not None else "null"
            lines.append(f"  {_SYMBOLS[action][0]} {name} = {value}")
    lines += [f"\nWarning: {warning}" for warning in current.warnings]
    return "\n".join(lines) + "\n"


def _argument_lines(change: plans.ResourceChange, differ: _Differ) -> Iterator[str]:
    before, after = change.before or {}, change.after or {}
    if change.action in ("create", "delete"):
        symbol = "+" if change.action == "create" else "-"
        for name, value in (after if change.action == "create" else before).items():
            yield f"{symbol} {name} = {_rendered(value)}"
        return
    forcing = REPLACE_ON.get(change.type, frozenset())
    for name in sorted(differ.changed.get(change.address, ())):
        note = "  # forces replacement" if name in forcing else ""
        old = "" if before.get(name) == KNOWN_AFTER_APPLY else f"{_rendered(before.get(name))} -> "
        yield f"~ {name} = {old}{_rendered(after.get(name))}{note}"
    if change.address in differ.forced:
        yield "# (replace_triggered_by)"


def _rendered(value: Any) -> str:
    if value in (KNOWN_AFTER_APPLY, plans.SENSITIVE):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


# --- the stored form ------------------------------------------------------------------------------------------


def serialize(configuration: Configuration) -> dict[str, Any]:
    """JSON-ready data for :func:`deserialize`: the "last applied configuration" the operator keeps.

    Sensitive values are already digests; unknown values keep their expression and digest.
    """
    return {
        "format": FORMAT,
        "engineVersion": ENGINE_VERSION,
        "resources": [_resource_data(resource) for resource in configuration.resources.values()],
        "outputs": [
            {"name": o.name, "value": _encode(o.value), "sensitive": o.sensitive}
            for o in configuration.outputs.values()
        ],
        "moves": [list(move) for move in configuration.moves],
        "warnings": list(configuration.warnings),
    }


def deserialize(data: Mapping[str, Any]) -> Configuration:
    """The configuration :func:`serialize` wrote; :class:`ConfigurationError` for anything else."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise ConfigurationError(f"the stored configuration is not in format {FORMAT}")
    try:
        resources = [_resource_from(item) for item in data["resources"]]
        outputs = [Output(o["name"], _decode(o["value"]), bool(o["sensitive"])) for o in data["outputs"]]
        return Configuration(
            resources={resource.address: resource for resource in resources},
            outputs={output.name: output for output in outputs},
            moves=tuple((str(source), str(target)) for source, target in data["moves"]),
            warnings=tuple(str(warning) for warning in data["warnings"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigurationError(f"the stored configuration is not readable: {e!r}") from e


def _resource_data(resource: Resource) -> dict[str, Any]:
    data = {
        "address": resource.address,
        "mode": resource.mode,
        "type": resource.type,
        "name": resource.name,
        "attributes": _encode(dict(resource.attributes)),
        "module": resource.module,
        "key": resource.key,
        "file": resource.file,
        "line": resource.line,
        "unknownCount": resource.unknown_count,
        "ignoreChanges": list(resource.ignore_changes),
        "replaceTriggeredBy": [[ref.address, ref.key, ref.attribute] for ref in resource.replace_triggered_by],
    }
    return {name: value for name, value in data.items() if value not in ("", None, False, [])}  # defaults


def _resource_from(data: Mapping[str, Any]) -> Resource:
    mode = data["mode"]
    if mode not in ("managed", "data"):
        raise ValueError(f"mode {mode!r}")
    return Resource(
        address=data["address"],
        mode=mode,
        type=data["type"],
        name=data["name"],
        attributes=_decode(data["attributes"]),
        module=data.get("module", ""),
        key=data.get("key"),
        file=data.get("file"),
        line=data.get("line"),
        unknown_count=bool(data.get("unknownCount")),
        ignore_changes=tuple(data.get("ignoreChanges", ())),
        replace_triggered_by=tuple(Ref(*ref) for ref in data.get("replaceTriggeredBy", ())),
    )


def _encode(value: Any) -> Any:
    """A value as JSON; an unknown keeps no references (they follow from its expression and address)."""
    if isinstance(value, Unknown):
        return {"$unknown": value.expression, "digest": value.digest}
    if isinstance(value, Sensitive):
        return {"$sensitive": value.digest}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    return value


def _encode_leaf(value: Any) -> Any:
    """``json.dumps``' fallback for our own value types."""
    if isinstance(value, Unknown | Sensitive):
        return _encode(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "$unknown" in value:
        return Unknown(value["$unknown"], value["digest"])
    if "$sensitive" in value:
        return Sensitive(value["$sensitive"])
    return {key: _decode(item) for key, item in value.items()}


def cache_info() -> dict[str, Any]:
    """Hits and misses of the per-file caches (parse, extraction, evaluation): for metrics and tests."""
    return {
        "parse": hcl._parse_cached.cache_info(),
        "extract": _extract.cache_info(),
        "evaluate": _file_resources.cache_info(),
    }
