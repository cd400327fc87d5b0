"""Security rules over a plan's planned configuration, a 0-100 score, and their renderings. Pure: no I/O.

:func:`scan` checks what will exist once the plan is applied: the ``after`` configuration of every change that is
not a delete (unchanged resources included: they will still exist), plus, for hard-coded secrets, the raw text of
the files handed in. :data:`RULES` lists the rules; ``docs/security-rules.md`` documents each one, the score
formula and the gaps, and a unit test keeps the two in step.

Values arrive in two shapes and every rule reads both: ``terraform show -json`` through
:mod:`chkmate.domain.tfjson` (typed booleans and numbers, policies as JSON strings, unknown values as
:data:`tfjson.KNOWN_AFTER_APPLY`) and python-hcl2's classic parse used by the builtin engine (expressions as
``"${...}"`` strings, ``jsonencode({...})`` unevaluated, heredocs with their markers). A value that is an
expression, unknown, sensitive or redacted is never judged; an absent attribute takes the provider's default.

A finding points at the resource's declaration (``ResourceChange.file``/``line``) and, when that file's text is
handed in, at the line of the attribute at fault. Findings never carry a secret value: the secrets rules say what
was found and where, never what it is.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import lark

from chkmate.api import plans as plan_api
from chkmate.domain import hcl, plans, tfjson

Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
# What a rule's first finding takes off the score; each later finding of the same rule takes half as much.
WEIGHTS: Mapping[Severity, int] = {"critical": 25, "high": 10, "medium": 4, "low": 1}
_RANK: Mapping[Severity, int] = {severity: rank for rank, severity in enumerate(SEVERITIES)}
_UNKNOWN = frozenset({plans.SENSITIVE, tfjson.KNOWN_AFTER_APPLY, tfjson.REDACTED})

Attrs = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Rule:
    """A check with a stable id: ids are API (suppressions and dashboards refer to them), never reused."""

    id: str
    severity: Severity
    title: str
    description: str
    remediation: str


@dataclasses.dataclass(frozen=True)
class Finding:
    """One rule failing at one place. ``address`` is None for findings in files (hard-coded secrets)."""

    rule_id: str
    severity: Severity
    title: str
    address: str | None
    file: str | None
    line: int | None
    message: str  # never holds a secret value


@dataclasses.dataclass(frozen=True)
class Report:
    """Findings most severe first, their count per severity, and the score (see :func:`score`)."""

    score: int
    findings: tuple[Finding, ...]
    counts: Mapping[Severity, int]


S3_PUBLIC_ACL = Rule(
    "CHK-S3-001",
    "critical",
    "S3 bucket ACL grants public access",
    "A canned ACL (public-read, public-read-write, authenticated-read) or a grant to the AllUsers or "
    "AuthenticatedUsers group, inline on aws_s3_bucket or in aws_s3_bucket_acl, opens the bucket to anyone.",
    "Use the private ACL (or none, with object ownership BucketOwnerEnforced) and serve public content through "
    "CloudFront with an origin access control.",
)
S3_PUBLIC_ACCESS_BLOCK = Rule(
    "CHK-S3-002",
    "high",
    "S3 bucket without a full public access block",
    "No aws_s3_bucket_public_access_block in the plan covers the bucket with all four flags true, and no "
    "aws_s3_account_public_access_block does either: one policy or ACL change away from public.",
    "Add an aws_s3_bucket_public_access_block for the bucket with block_public_acls, block_public_policy, "
    "ignore_public_acls and restrict_public_buckets all true.",
)
S3_ENCRYPTION = Rule(
    "CHK-S3-003",
    "low",
    "S3 bucket without an encryption configuration",
    "Neither an inline server_side_encryption_configuration nor an "
    "aws_s3_bucket_server_side_encryption_configuration for the bucket: it relies on the SSE-S3 default AWS "
    "applies since January 2023, with no customer-managed key and no record of intent in code.",
    "Add an aws_s3_bucket_server_side_encryption_configuration (aws:kms with a customer-managed key for "
    "sensitive data).",
)
SG_ADMIN_PORT = Rule(
    "CHK-SG-001",
    "critical",
    "Security group opens an admin port to the internet",
    "An ingress rule (inline ingress block, aws_security_group_rule or aws_vpc_security_group_ingress_rule) "
    "allows 0.0.0.0/0 or ::/0 to reach SSH, RDP or a database port (22, 3389, 3306, 5432, 1433, 27017, 6379, "
    "9200).",
    "Allow only known CIDRs or security groups; reach instances through SSM Session Manager or a VPN.",
)
SG_ALL_PORTS = Rule(
    "CHK-SG-002",
    "critical",
    "Security group opens all ports to the internet",
    "An ingress rule allows 0.0.0.0/0 or ::/0 on every port (protocol -1/all, or ports 0 or 1 to 65535).",
    "Open only the ports the service needs, to the sources that need them.",
)
EBS_ENCRYPTION = Rule(
    "CHK-EBS-001",
    "high",
    "EBS volume not encrypted",
    "An aws_ebs_volume, or a root_block_device/ebs_block_device of an aws_instance, without encrypted = true.",
    "Set encrypted = true (and kms_key_id for a customer-managed key), or turn on "
    "aws_ebs_encryption_by_default for the account.",
)
RDS_ENCRYPTION = Rule(
    "CHK-RDS-001",
    "high",
    "RDS storage not encrypted",
    "An aws_db_instance or aws_rds_cluster without storage_encrypted = true (read replicas, which inherit their "
    "source's encryption, and Aurora Serverless v1, always encrypted, are exempt).",
    "Set storage_encrypted = true; an existing database needs a snapshot, an encrypted copy and a restore.",
)
EFS_ENCRYPTION = Rule(
    "CHK-EFS-001",
    "high",
    "EFS file system not encrypted",
    "An aws_efs_file_system without encrypted = true.",
    "Set encrypted = true (at creation: it cannot be changed later).",
)
IAM_ADMIN = Rule(
    "CHK-IAM-001",
    "critical",
    "IAM policy allows every action on every resource",
    'A statement with Effect Allow, Action "*" (or "*:*") and Resource "*" in an IAM policy, role, user or '
    "group policy, an inline_policy of aws_iam_role, or an aws_iam_policy_document.",
    "Grant the actions and resources the principal needs; use AWS managed job-function policies as a start.",
)
RDS_DELETION_PROTECTION = Rule(
    "CHK-RDS-002",
    "medium",
    "RDS database without deletion protection",
    "An aws_db_instance or aws_rds_cluster without deletion_protection = true can be deleted by one API call "
    "or one mistaken terraform destroy.",
    "Set deletion_protection = true.",
)
RDS_PUBLIC = Rule(
    "CHK-RDS-003",
    "critical",
    "RDS database publicly accessible",
    "An aws_db_instance or aws_rds_cluster_instance with publicly_accessible = true gets a public DNS name and "
    "address.",
    "Set publicly_accessible = false and reach the database from inside the VPC.",
)
RDS_BACKUPS = Rule(
    "CHK-RDS-004",
    "medium",
    "RDS automated backups disabled",
    "backup_retention_period = 0 turns off automated backups and point-in-time recovery.",
    "Set backup_retention_period to at least 7 days.",
)
CLOUDTRAIL_LOGGING = Rule(
    "CHK-CT-001",
    "high",
    "CloudTrail logging disabled",
    "An aws_cloudtrail with enable_logging = false records nothing.",
    "Remove enable_logging = false (it defaults to true).",
)
CLOUDTRAIL_VALIDATION = Rule(
    "CHK-CT-002",
    "medium",
    "CloudTrail log file validation off",
    "Without enable_log_file_validation = true, tampering with delivered log files goes unnoticed.",
    "Set enable_log_file_validation = true.",
)
KMS_ROTATION = Rule(
    "CHK-KMS-001",
    "medium",
    "KMS key without automatic rotation",
    "A symmetric aws_kms_key without enable_key_rotation = true (AWS cannot rotate asymmetric or HMAC keys).",
    "Set enable_key_rotation = true.",
)
EC2_IMDSV1 = Rule(
    "CHK-EC2-001",
    "high",
    "Instance metadata service v1 allowed",
    'An aws_instance or aws_launch_template whose metadata_options do not set http_tokens = "required": IMDSv1 '
    "answers unauthenticated requests, the classic SSRF path to instance credentials.",
    'Add metadata_options { http_tokens = "required" } (or http_endpoint = "disabled").',
)
LB_HTTP = Rule(
    "CHK-LB-001",
    "high",
    "Load balancer listener serves plain HTTP",
    "An aws_lb_listener or aws_alb_listener with protocol HTTP whose default action does not redirect to HTTPS.",
    'Redirect: default_action { type = "redirect" redirect { protocol = "HTTPS" port = "443" '
    'status_code = "HTTP_301" } }, and serve on an HTTPS listener.',
)
SECRET_AWS_KEY = Rule(
    "CHK-SEC-001",
    "critical",
    "AWS access key hard-coded",
    "An AWS access key id (AKIA... or ASIA...) in a file; its secret key is usually next to it.",
    "Revoke the key now, remove it from the history, and use an IAM role or the credentials Secret instead.",
)
SECRET_PRIVATE_KEY = Rule(
    "CHK-SEC-002",
    "critical",
    "Private key hard-coded",
    "A PEM or PGP private key block in a file.",
    "Rotate the key, remove it from the history, and read it from a secret store at apply time.",
)
SECRET_GITHUB_TOKEN = Rule(
    "CHK-SEC-003",
    "critical",
    "GitHub token hard-coded",
    "A GitHub token (ghp_, gho_, ghu_, ghs_, ghr_ or github_pat_) in a file.",
    "Revoke the token on GitHub, remove it from the history, and pass it through a sensitive variable.",
)
SECRET_ASSIGNMENT = Rule(
    "CHK-SEC-004",
    "high",
    "Secret value hard-coded",
    "A literal string assigned to a password-like name (password, passwd, passphrase, pwd), or a random-looking "
    "literal (16+ characters, 3.5+ bits of entropy per character, two character classes) assigned to a "
    "secret-like name (secret, token, api_key, access_key, secret_key, private_key, credentials), including a "
    "variable's default. References (var., data., ${...}) are not literals.",
    "Declare a sensitive variable without a default and pass the value at plan time, or read it from AWS "
    "Secrets Manager / SSM Parameter Store with a data source.",
)

RULES: tuple[Rule, ...] = (
    S3_PUBLIC_ACL,
    S3_PUBLIC_ACCESS_BLOCK,
    S3_ENCRYPTION,
    SG_ADMIN_PORT,
    SG_ALL_PORTS,
    EBS_ENCRYPTION,
    RDS_ENCRYPTION,
    EFS_ENCRYPTION,
    IAM_ADMIN,
    RDS_DELETION_PROTECTION,
    RDS_PUBLIC,
    RDS_BACKUPS,
    CLOUDTRAIL_LOGGING,
    CLOUDTRAIL_VALIDATION,
    KMS_ROTATION,
    EC2_IMDSV1,
    LB_HTTP,
    SECRET_AWS_KEY,
    SECRET_PRIVATE_KEY,
    SECRET_GITHUB_TOKEN,
    SECRET_ASSIGNMENT,
)


def scan(changes: Iterable[plans.ResourceChange], *, files: Mapping[str, str] | None = None) -> Report:
    """Every rule over the changes that leave something behind, and the secrets rules over ``files``."""
    texts = files or {}
    remaining = _Plan(tuple(c for c in changes if c.action != "delete" and c.after is not None))
    lines = {path: text.splitlines() for path, text in texts.items()}
    found = [
        _resource_finding(rule, change, hit, lines)
        for rule, types, check in _RESOURCE_CHECKS
        for change in remaining.changes
        if change.type in types
        for hit in check(change, remaining)
    ]
    found.extend(finding for path in sorted(texts) for finding in _secret_findings(path, texts[path]))
    return report(found)


def report(findings: Iterable[Finding]) -> Report:
    """The report of these findings: ordered by severity, file, line, rule and address; counted; scored."""
    ordered = tuple(sorted(findings, key=_order))
    counts = collections.Counter(finding.severity for finding in ordered)
    return Report(score(ordered), ordered, {severity: counts[severity] for severity in SEVERITIES})


def score(findings: Iterable[Finding]) -> int:
    """100 minus each rule's penalty, rounded down, floor 0 (docs/security-rules.md).

    A rule with ``n`` findings of weight ``w`` (:data:`WEIGHTS`) costs ``w + (n - 1) * w / 2``: the first
    finding counts whole and every other one half, so one noisy rule cannot sink the score alone.
    """
    per_rule = collections.Counter((finding.rule_id, finding.severity) for finding in findings)
    penalty = sum(WEIGHTS[severity] * (count + 1) / 2 for (_, severity), count in per_rule.items())
    return max(0, math.floor(100 - penalty))


def fails(report: Report, threshold: Severity) -> bool:
    """Whether a check run fails: some finding is at least as severe as ``threshold``."""
    return any(_RANK[finding.severity] <= _RANK[threshold] for finding in report.findings)


def to_status(report: Report) -> plan_api.SecurityReport:
    counts = report.counts
    return plan_api.SecurityReport(
        score=report.score,
        critical=counts["critical"],
        high=counts["high"],
        medium=counts["medium"],
        low=counts["low"],
    )


def markdown(report: Report, limit: int = 20) -> str:
    """A GitHub Markdown table of the first ``limit`` findings, with a line counting those left out."""
    if not report.findings:
        return "No security findings."
    rows = [
        "| Severity | Rule | Resource | Location | Finding |",
        "|---|---|---|---|---|",
        *(_row(finding) for finding in report.findings[: max(limit, 0)]),
    ]
    hidden = len(report.findings) - max(limit, 0)
    if hidden > 0:
        rows.append(f"\n…and {hidden} more finding{'s' if hidden > 1 else ''} not shown.")
    return "\n".join(rows)


def _row(finding: Finding) -> str:
    address = f"`{_cell(finding.address)}`" if finding.address else "—"
    if finding.file is None:
        location = "—"
    else:
        location = f"`{_cell(finding.file)}:{finding.line}`" if finding.line else f"`{_cell(finding.file)}`"
    rule = f"`{finding.rule_id}` {_cell(finding.title)}"
    return f"| {finding.severity} | {rule} | {address} | {location} | {_cell(finding.message)} |"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _order(finding: Finding) -> tuple[int, str, int, str, str]:
    return (_RANK[finding.severity], finding.file or "", finding.line or 0, finding.rule_id, finding.address or "")


# ---------------------------------------------------------------------------------------------------------------
# Resource rules


@dataclasses.dataclass(frozen=True)
class _Hit:
    """A rule failing on a resource: what is wrong, and which attribute (its ``nth`` occurrence) to point at."""

    message: str
    key: str | None = None
    nth: int = 0


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The changes that leave something behind, for rules that look at companion resources (S3)."""

    changes: tuple[plans.ResourceChange, ...]

    def for_bucket(self, type_: str, bucket: plans.ResourceChange) -> list[Attrs]:
        return [_after(c) for c in self.changes if c.type == type_ and _targets(c, bucket)]

    def of_type(self, type_: str) -> list[Attrs]:
        return [_after(c) for c in self.changes if c.type == type_]


_Check = Callable[[plans.ResourceChange, _Plan], Iterator[_Hit]]


def _resource_finding(
    rule: Rule, change: plans.ResourceChange, hit: _Hit, lines: Mapping[str, Sequence[str]]
) -> Finding:
    file, line = change.file, change.line
    if file is not None and file in lines and line is not None and hit.key is not None:
        line = _attribute_line(lines[file], line, hit.key, hit.nth) or line
    return Finding(rule.id, rule.severity, rule.title, change.address, file, line, hit.message)


def _after(change: plans.ResourceChange) -> Attrs:
    return change.after or {}


_PUBLIC_ACLS = {
    "public-read": "anyone on the internet list and read its objects",
    "public-read-write": "anyone on the internet read, write and delete its objects",
    "authenticated-read": "any AWS account read its objects",
}
_PUBLIC_GROUPS = ("AllUsers", "AuthenticatedUsers")


def _s3_public_acl(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    after = _after(change)
    acl = after.get("acl")
    if acl in _PUBLIC_ACLS:
        yield _Hit(f'acl = "{acl}" lets {_PUBLIC_ACLS[acl]}.', "acl")
    for group in _public_grantees(after):
        yield _Hit(f"A grant gives the {group} group access to the bucket.", "grant")


def _public_grantees(after: Attrs) -> Iterator[str]:
    """Public groups granted access: inline ``grant`` blocks, or aws_s3_bucket_acl's access_control_policy."""
    grantees = list(_blocks(after.get("grant")))
    for policy in _blocks(after.get("access_control_policy")):
        for grant in _blocks(policy.get("grant")):
            grantees.extend(_blocks(grant.get("grantee")))
    for grantee in grantees:
        uri = grantee.get("uri")
        group = uri.rpartition("/")[2] if isinstance(uri, str) else ""
        if group in _PUBLIC_GROUPS:
            yield group


_ACCESS_BLOCK_FLAGS = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")


def _s3_public_access_block(bucket: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    if any(not _flags_off(block) for block in plan.of_type("aws_s3_account_public_access_block")):
        return
    blocks = plan.for_bucket("aws_s3_bucket_public_access_block", bucket)
    if not blocks:
        yield _Hit("No aws_s3_bucket_public_access_block in this plan covers this bucket.")
        return
    fewest: list[str] = min((_flags_off(block) for block in blocks), key=len)
    if fewest:
        yield _Hit(f"Its public access block leaves {', '.join(fewest)} off.")


def _flags_off(block: Attrs) -> list[str]:
    return [flag for flag in _ACCESS_BLOCK_FLAGS if _flag(block.get(flag), default=False) is False]


def _s3_encryption(bucket: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    if _blocks(_after(bucket).get("server_side_encryption_configuration")):
        return
    if not plan.for_bucket("aws_s3_bucket_server_side_encryption_configuration", bucket):
        yield _Hit("No server-side encryption configuration for this bucket in this plan.")


def _targets(companion: plans.ResourceChange, bucket: plans.ResourceChange) -> bool:
    """Whether a companion resource (public access block, encryption configuration...) is for ``bucket``.

    By reference (``aws_s3_bucket.<name>.id`` in the same module, as the builtin engine sees it), by bucket name
    (known values in plan JSON), or, when the companion's bucket is not known before apply, by the same name in
    the same module (``aws_s3_bucket.logs`` ↔ ``aws_s3_bucket_public_access_block.logs``).
    """
    value = _after(companion).get("bucket")
    same_module = companion.module == bucket.module
    if isinstance(value, str) and "${" in value:
        return same_module and re.search(rf"\baws_s3_bucket\.{re.escape(bucket.name)}[.\[]", value) is not None
    if value is None or value in _UNKNOWN:
        return same_module and _local_name(companion) == _local_name(bucket)
    return bool(value == _after(bucket).get("bucket"))


def _local_name(change: plans.ResourceChange) -> str:
    """``module.a.aws_s3_bucket.logs[0]`` → ``logs[0]``."""
    return change.address.rpartition(f"{change.type}.")[2]


ADMIN_PORTS: Mapping[int, str] = {
    22: "SSH",
    3389: "RDP",
    3306: "MySQL",
    5432: "PostgreSQL",
    1433: "SQL Server",
    27017: "MongoDB",
    6379: "Redis",
    9200: "Elasticsearch",
}
_SG_TYPES = frozenset(
    {
        "aws_security_group",
        "aws_default_security_group",
        "aws_security_group_rule",
        "aws_vpc_security_group_ingress_rule",
    }
)
_INTERNET = ("0.0.0.0/0", "::/0")
_PROTOCOLS = {"-1": "all", "all": "all", "6": "tcp", "17": "udp"}


@dataclasses.dataclass(frozen=True)
class _Ingress:
    protocol: str  # all, tcp, udp, or as written
    from_port: int | None
    to_port: int | None
    open_to: tuple[str, ...]  # the internet-wide CIDRs among its sources

    @property
    def all_ports(self) -> bool:
        if self.protocol == "all":
            return True
        if self.protocol not in ("tcp", "udp") or self.from_port is None:
            return False
        return self.from_port <= 1 and self.to_port == 65535

    def admin_ports(self) -> list[str]:
        if self.protocol != "tcp" or self.from_port is None or self.to_port is None:
            return []
        low, high = self.from_port, self.to_port
        return [f"{port} ({service})" for port, service in ADMIN_PORTS.items() if low <= port <= high]


def _ingress_rules(change: plans.ResourceChange) -> list[tuple[_Ingress, str | None]]:
    """Each ingress rule of the resource with the attribute to point at (inline ``ingress`` blocks, in order)."""
    after = _after(change)
    if change.type == "aws_vpc_security_group_ingress_rule":
        sources = [after.get("cidr_ipv4"), after.get("cidr_ipv6")]
        return [(_ingress(after, after.get("ip_protocol"), sources), None)]
    if change.type == "aws_security_group_rule":
        if after.get("type") != "ingress":
            return []
        sources = [*_strings(after.get("cidr_blocks")), *_strings(after.get("ipv6_cidr_blocks"))]
        return [(_ingress(after, after.get("protocol"), sources), None)]
    return [
        (
            _ingress(
                block,
                block.get("protocol"),
                [*_strings(block.get("cidr_blocks")), *_strings(block.get("ipv6_cidr_blocks"))],
            ),
            "ingress",
        )
        for block in _blocks(after.get("ingress"))
    ]


def _ingress(values: Attrs, protocol: Any, sources: Iterable[Any]) -> _Ingress:
    written = "" if protocol is None else str(protocol).lower()
    open_to = tuple(dict.fromkeys(s for s in sources if s in _INTERNET))
    return _Ingress(
        _PROTOCOLS.get(written, written), _int(values.get("from_port")), _int(values.get("to_port")), open_to
    )


def _sg_admin_ports(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    for nth, (ingress, key) in enumerate(_ingress_rules(change)):
        exposed = ingress.admin_ports() if ingress.open_to and not ingress.all_ports else []
        if exposed:
            sources = " and ".join(ingress.open_to)
            yield _Hit(f"Ingress from {sources} reaches port {', '.join(exposed)}.", key, nth)


def _sg_all_ports(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    for nth, (ingress, key) in enumerate(_ingress_rules(change)):
        if ingress.open_to and ingress.all_ports:
            sources = " and ".join(ingress.open_to)
            yield _Hit(f"Ingress from {sources} on all ports (protocol {ingress.protocol}).", key, nth)


def _requires(key: str, *, default: bool, message: str) -> _Check:
    """A check that fires when boolean ``key`` is known to be false (absent: ``default``)."""

    def check(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
        if _flag(_after(change).get(key), default=default) is False:
            yield _Hit(message, key)

    return check


def _instance_volumes(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    for key in ("root_block_device", "ebs_block_device"):
        for nth, device in enumerate(_blocks(_after(change).get(key))):
            if _flag(device.get("encrypted"), default=False) is False:
                yield _Hit(f"A {key} is not encrypted.", key, nth)


def _rds_encryption(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    after = _after(change)
    if after.get("replicate_source_db") or after.get("engine_mode") == "serverless":
        return
    if _flag(after.get("storage_encrypted"), default=False) is False:
        yield _Hit(
            "storage_encrypted is not true: data, logs, backups and snapshots are stored in clear.", "storage_encrypted"
        )


def _rds_public(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    if _flag(_after(change).get("publicly_accessible"), default=False) is True:
        yield _Hit("publicly_accessible = true gives the database a public address.", "publicly_accessible")


def _rds_backups(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    if _int(_after(change).get("backup_retention_period")) == 0:
        yield _Hit("backup_retention_period = 0 turns automated backups off.", "backup_retention_period")


def _kms_rotation(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    after = _after(change)
    if after.get("customer_master_key_spec") not in (None, "SYMMETRIC_DEFAULT"):
        return
    if _flag(after.get("enable_key_rotation"), default=False) is False:
        yield _Hit("enable_key_rotation is not true.", "enable_key_rotation")


def _imds_v1(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    options = _blocks(_after(change).get("metadata_options"))
    if not options:
        yield _Hit('No metadata_options: http_tokens defaults to "optional", which allows IMDSv1.')
        return
    if options[0].get("http_endpoint") == "disabled":
        return
    tokens = options[0].get("http_tokens")
    if tokens is None or (_is_literal(tokens) and tokens != "required"):
        yield _Hit(
            f'http_tokens = "{tokens or "optional"}" allows IMDSv1.', "http_tokens" if tokens else "metadata_options"
        )


def _lb_http(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    after = _after(change)
    protocol = after.get("protocol")
    if not (isinstance(protocol, str) and protocol.upper() == "HTTP"):
        return
    if not any(_redirects_to_https(action) for action in _blocks(after.get("default_action"))):
        port = after.get("port")
        yield _Hit(
            f"The HTTP listener{f' on port {port}' if port else ''} does not redirect to HTTPS.", "default_action"
        )


def _redirects_to_https(action: Attrs) -> bool:
    return action.get("type") == "redirect" and any(
        str(redirect.get("protocol", "")).upper() == "HTTPS" for redirect in _blocks(action.get("redirect"))
    )


_POLICY_TYPES = frozenset({"aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"})
_ALL_ACTIONS = ("*", "*:*")


def _iam_admin(change: plans.ResourceChange, plan: _Plan) -> Iterator[_Hit]:
    for key, nth, (effect, actions, resources) in _statements(change):
        if effect == "Allow" and any(a in _ALL_ACTIONS for a in actions) and "*" in resources:
            yield _Hit('A statement allows every action ("*") on every resource ("*").', key, nth)


_Statement = tuple[Any, list[str], list[str]]  # effect, actions, resources


def _statements(change: plans.ResourceChange) -> Iterator[tuple[str, int, _Statement]]:
    """The statements of the resource's policies, each with the attribute to point at and its occurrence."""
    after = _after(change)
    if change.type == "aws_iam_policy_document":
        for nth, block in enumerate(_blocks(after.get("statement"))):
            effect = block.get("effect") or "Allow"
            yield "statement", nth, (effect, _strings(block.get("actions")), _strings(block.get("resources")))
        return
    if change.type in _POLICY_TYPES:
        policies = [after.get("policy")]
    else:  # aws_iam_role's inline_policy blocks
        policies = [block.get("policy") for block in _blocks(after.get("inline_policy"))]
    for nth, policy in enumerate(policies):
        document = _policy_document(policy) or {}
        for statement in _blocks(document.get("Statement")):
            found = (statement.get("Effect"), _strings(statement.get("Action")), _strings(statement.get("Resource")))
            yield "policy", nth, found


_JSONENCODE = re.compile(r"^\$\{jsonencode\((?P<body>.*)\)\}$", re.DOTALL)
_HEREDOC = re.compile(r"^<<-?(?P<tag>\w+)\n(?P<body>.*)\n\s*(?P=tag)$", re.DOTALL)


def _policy_document(value: Any) -> Attrs | None:
    """A policy as a mapping, from a mapping, a JSON string, a heredoc, or an unevaluated ``jsonencode({...})``."""
    if isinstance(value, Mapping):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if match := _JSONENCODE.match(text):
        return _hcl_object(match["body"])
    if match := _HEREDOC.match(text):
        text = match["body"]
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None
    return document if isinstance(document, Mapping) else None


def _hcl_object(expression: str) -> Attrs | None:
    try:
        value = hcl.parse(f"document = {expression}\n").get("document")
    except (lark.exceptions.LarkError, ValueError):
        return None
    return value if isinstance(value, Mapping) else None


_RESOURCE_CHECKS: tuple[tuple[Rule, frozenset[str], _Check], ...] = (
    (S3_PUBLIC_ACL, frozenset({"aws_s3_bucket", "aws_s3_bucket_acl"}), _s3_public_acl),
    (S3_PUBLIC_ACCESS_BLOCK, frozenset({"aws_s3_bucket"}), _s3_public_access_block),
    (S3_ENCRYPTION, frozenset({"aws_s3_bucket"}), _s3_encryption),
    (SG_ADMIN_PORT, _SG_TYPES, _sg_admin_ports),
    (SG_ALL_PORTS, _SG_TYPES, _sg_all_ports),
    (
        EBS_ENCRYPTION,
        frozenset({"aws_ebs_volume"}),
        _requires("encrypted", default=False, message="The volume is not encrypted."),
    ),
    (EBS_ENCRYPTION, frozenset({"aws_instance"}), _instance_volumes),
    (RDS_ENCRYPTION, frozenset({"aws_db_instance", "aws_rds_cluster"}), _rds_encryption),
    (
        EFS_ENCRYPTION,
        frozenset({"aws_efs_file_system"}),
        _requires("encrypted", default=False, message="The file system is not encrypted."),
    ),
    (IAM_ADMIN, _POLICY_TYPES | {"aws_iam_role", "aws_iam_policy_document"}, _iam_admin),
    (
        RDS_DELETION_PROTECTION,
        frozenset({"aws_db_instance", "aws_rds_cluster"}),
        _requires("deletion_protection", default=False, message="deletion_protection is not true."),
    ),
    (RDS_PUBLIC, frozenset({"aws_db_instance", "aws_rds_cluster_instance"}), _rds_public),
    (RDS_BACKUPS, frozenset({"aws_db_instance", "aws_rds_cluster"}), _rds_backups),
    (
        CLOUDTRAIL_LOGGING,
        frozenset({"aws_cloudtrail"}),
        _requires("enable_logging", default=True, message="enable_logging = false: the trail records nothing."),
    ),
    (
        CLOUDTRAIL_VALIDATION,
        frozenset({"aws_cloudtrail"}),
        _requires("enable_log_file_validation", default=False, message="enable_log_file_validation is not true."),
    ),
    (KMS_ROTATION, frozenset({"aws_kms_key"}), _kms_rotation),
    (EC2_IMDSV1, frozenset({"aws_instance", "aws_launch_template"}), _imds_v1),
    (LB_HTTP, frozenset({"aws_lb_listener", "aws_alb_listener"}), _lb_http),
)


# ---------------------------------------------------------------------------------------------------------------
# Values as either shape gives them


def _is_literal(value: Any) -> bool:
    """A string known before apply: not an expression, not unknown, sensitive or redacted."""
    return isinstance(value, str) and "${" not in value and value not in _UNKNOWN


def _flag(value: Any, *, default: bool) -> bool | None:
    """A boolean setting: ``default`` when absent, None when not known before apply (an expression...)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _blocks(value: Any) -> list[Attrs]:
    """Nested blocks: a list of mappings in both shapes (a lone mapping for single-nested attributes)."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, Mapping)]


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, str)]


# ---------------------------------------------------------------------------------------------------------------
# Where an attribute is written


def _attribute_line(lines: Sequence[str], start: int, key: str, nth: int) -> int | None:
    """The line of the ``nth`` ``key = ...`` / ``key {`` inside the block opening at line ``start`` (1-based).

    Braces are counted outside strings and comments to find the block's end; heredoc bodies are not told apart,
    which only matters for unbalanced braces inside them.
    """
    pattern = re.compile(rf'^\s*"?{re.escape(key)}"?\s*[={{]')
    depth = seen = 0
    for number in range(start, len(lines) + 1):
        text = lines[number - 1]
        if number > start and pattern.match(text):
            if seen == nth:
                return number
            seen += 1
        depth += _brace_balance(text)
        if depth <= 0:
            return None
    return None


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"(?:#|//).*$")


def _brace_balance(line: str) -> int:
    code = _COMMENT.sub("", _STRING.sub('""', line))
    return code.count("{") - code.count("}")


# ---------------------------------------------------------------------------------------------------------------
# Hard-coded secrets


@dataclasses.dataclass(frozen=True)
class _TokenShape:
    rule: Rule
    pattern: re.Pattern[str]
    what: str


_TOKEN_SHAPES = (
    # AWS's documentation key AKIAIOSFODNN7EXAMPLE (and its kin) is no secret: 9 characters then EXAMPLE.
    _TokenShape(
        SECRET_AWS_KEY,
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)(?![A-Z0-9]{9}EXAMPLE)[A-Z0-9]{16}(?![A-Z0-9])"),
        "An AWS access key id",
    ),
    _TokenShape(SECRET_PRIVATE_KEY, re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"), "A private key"),
    # https://github.blog/2021-04-05-behind-githubs-new-authentication-token-formats/
    _TokenShape(
        SECRET_GITHUB_TOKEN,
        re.compile(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
        "A GitHub token",
    ),
)
# key = "value", "key": "value", key: 'value' (HCL, tfvars, JSON, YAML and shell lines alike).
_ASSIGNMENT = re.compile(r"""(?P<key>[A-Za-z_][\w.-]*)["']?\s*[:=]\s*(?P<quote>["'])(?P<value>.*?)(?P=quote)""")
_PASSWORD_NAME = re.compile(r"(?:password|passwd|passphrase|pwd)$", re.IGNORECASE)
_SECRET_NAME = re.compile(
    r"(?:secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|credentials?)$", re.IGNORECASE
)
_VARIABLE = re.compile(r'^\s*variable\s+"?(?P<name>[\w-]+)"?\s*\{')
_TOP_LEVEL = re.compile(r"^[}\w]")
_REFERENCES = ("var.", "data.", "local.", "module.", "arn:")
# A random-looking value: long enough, mixed, and with this many bits of entropy per character (random base64
# has about 5.5 at this length, hex about 3.8; English words and slugs stay well under 3.5).
_MIN_RANDOM_LENGTH = 16
_MIN_ENTROPY = 3.5


def _secret_findings(path: str, text: str) -> Iterator[Finding]:
    """Hard-coded secrets in one file, line by line; the value itself is never part of a finding."""
    variable: str | None = None  # the variable block the line is in, so that its `default` takes its name
    shapes = tuple(shape for shape in _TOKEN_SHAPES if shape.pattern.search(text))  # then only these, line by line
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _VARIABLE.match(line):
            variable = match["name"]
        elif _TOP_LEVEL.match(line):
            variable = None
        for rule, message in _line_secrets(line, variable, shapes):
            yield Finding(rule.id, rule.severity, rule.title, None, path, number, message)


def _line_secrets(line: str, variable: str | None, shapes: tuple[_TokenShape, ...]) -> list[tuple[Rule, str]]:
    written = [
        (shape.rule, f"{shape.what} is written here (value redacted).")
        for shape in shapes
        if shape.pattern.search(line)
    ]
    if written:
        return written
    found = []
    for match in _ASSIGNMENT.finditer(line):
        name = variable if match["key"] == "default" and variable else match["key"]
        kind = _secret_kind(name, match["value"])
        if kind:
            found.append((SECRET_ASSIGNMENT, f"{name} is assigned a hard-coded {kind} (value redacted)."))
    return found


def _secret_kind(name: str, value: str) -> str | None:
    """``password`` or ``secret`` when a literal ``value`` assigned to ``name`` looks like one, else None."""
    if not value or "${" in value or "%{" in value or value in _UNKNOWN or value.startswith(_REFERENCES):
        return None
    if "EXAMPLE" in value:  # AWS documentation's placeholders (AKIAIOSFODNN7EXAMPLE...)
        return None
    if _PASSWORD_NAME.search(name):
        return "password"
    if _SECRET_NAME.search(name) and _random_looking(value):
        return "secret"
    return None


def _random_looking(value: str) -> bool:
    if len(value) < _MIN_RANDOM_LENGTH or any(c.isspace() for c in value):
        return False
    classes = sum(any(test(c) for c in value) for test in (str.islower, str.isupper, str.isdigit))
    return classes >= 2 and _entropy(value) >= _MIN_ENTROPY


def _entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts = collections.Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
