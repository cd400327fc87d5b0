"""Security rules, score, status and Markdown of :mod:`chkmate.domain.security`, table-driven.

Resource rules run on realistic AWS HCL parsed with ``domain.hcl.parse`` and turned into the changes the builtin
engine makes (``after`` = the block's attributes, ``file``/``line`` = its declaration), with the text handed in as
``files`` so that findings point at attribute lines. A few cases use the ``terraform show -json`` shape instead.
Fake secrets are assembled at run time so that no token-shaped string sits in the repository.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import pytest

from chkmate.domain import hcl, plans, security, tfjson

DOCS = pathlib.Path(__file__).parents[2] / "docs" / "security-rules.md"

AWS_KEY = "AKIA" + "Q3ZT7RW5VX2NB6LM"
GITHUB_TOKEN = "ghp_" + "x7Kp2mQ9vR4sT1wZ" * 2 + "a8Bc"
PEM_HEADER = "-----BEGIN " + "RSA PRIVATE KEY-----"
RANDOM_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "Zq8d3Lk2"
PASSWORD = "Sup3r-s3cret!"


def changes(text: str, *, path: str = "main.tf", action: plans.Action = "create") -> list[plans.ResourceChange]:
    """The builtin engine's view of ``text``: one change per resource/data block, ``after`` = its attributes."""
    lines = text.splitlines()
    found = []
    for kind, prefix in (("resource", ""), ("data", "data.")):
        for block in hcl.parse(text).get(kind, []):
            for type_, named in block.items():
                for name, attributes in named.items():
                    header = re.compile(rf'^\s*{kind}\s+"{type_}"\s+"{name}"')
                    line = next(n for n, written in enumerate(lines, start=1) if header.match(written))
                    address = f"{prefix}{type_}.{name}"
                    found.append(
                        plans.ResourceChange(address, type_, name, action, after=attributes, file=path, line=line)
                    )
    return found


def scan(text: str) -> security.Report:
    return security.scan(changes(text), files={"main.tf": text})


def rule_ids(report: security.Report) -> list[str]:
    return [finding.rule_id for finding in report.findings]


def line_of(text: str, fragment: str, nth: int = 0) -> int:
    return [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line][nth]


BUCKET = """
resource "aws_s3_bucket" "logs" {
  bucket = "acme-prod-logs"
}
"""
PUBLIC_ACCESS_BLOCK = """
resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = %s
}
"""
ENCRYPTION = """
resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.bucket
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.logs.arn
    }
  }
}
"""


def sg_ingress(from_port: str, to_port: str, protocol: str, cidrs: str, *, kind: str = "ingress") -> str:
    return f"""
resource "aws_security_group" "web" {{
  name   = "web"
  vpc_id = aws_vpc.main.id
  {kind} {{
    from_port   = {from_port}
    to_port     = {to_port}
    protocol    = "{protocol}"
    cidr_blocks = [{cidrs}]
  }}
}}
"""


def policy(action: str, resource: str, effect: str = "Allow") -> str:
    return f"""
resource "aws_iam_policy" "deploy" {{
  name = "deploy"
  policy = jsonencode({{
    Version = "2012-10-17"
    Statement = [{{
      Effect   = "{effect}"
      Action   = {action}
      Resource = {resource}
    }}]
  }})
}}
"""


def db(attributes: str, type_: str = "aws_db_instance") -> str:
    return f"""
resource "{type_}" "main" {{
  identifier     = "orders"
  engine         = "postgres"
  instance_class = "db.t4g.medium"
  username       = "orders"
  password       = var.db_password
  {attributes}
}}
"""


def trail(attributes: str) -> str:
    return f"""
resource "aws_cloudtrail" "main" {{
  name           = "main"
  s3_bucket_name = aws_s3_bucket.trail.id
  {attributes}
}}
"""


def listener(protocol: str, action: str) -> str:
    return f"""
resource "aws_lb_listener" "front" {{
  load_balancer_arn = aws_lb.front.arn
  port              = 80
  protocol          = "{protocol}"
  default_action {{
{action}
  }}
}}
"""


FORWARD = '    type             = "forward"\n    target_group_arn = aws_lb_target_group.app.arn'
REDIRECT = """    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "%s"
      status_code = "HTTP_301"
    }"""

# rule id, HCL on which it fires, HCL on which it stays quiet
CASES = [
    ("CHK-S3-001", BUCKET.replace("}", '  acl    = "public-read"\n}'), BUCKET.replace("}", '  acl    = "private"\n}')),
    (
        "CHK-S3-001",
        'resource "aws_s3_bucket_acl" "logs" {\n  bucket = aws_s3_bucket.logs.id\n  acl    = "public-read-write"\n}\n',
        'resource "aws_s3_bucket_acl" "logs" {\n  bucket = aws_s3_bucket.logs.id\n  acl    = "log-delivery-write"\n}\n',
    ),
    (
        "CHK-S3-001",
        """
resource "aws_s3_bucket_acl" "site" {
  bucket = aws_s3_bucket.site.id
  access_control_policy {
    grant {
      grantee {
        type = "Group"
        uri  = "http://acs.amazonaws.com/groups/global/AllUsers"
      }
      permission = "READ"
    }
    owner {
      id = data.aws_canonical_user_id.current.id
    }
  }
}
""",
        """
resource "aws_s3_bucket_acl" "site" {
  bucket = aws_s3_bucket.site.id
  access_control_policy {
    grant {
      grantee {
        type = "Group"
        uri  = "http://acs.amazonaws.com/groups/s3/LogDelivery"
      }
      permission = "WRITE"
    }
  }
}
""",
    ),
    ("CHK-S3-002", BUCKET, BUCKET + PUBLIC_ACCESS_BLOCK % "true"),
    ("CHK-S3-002", BUCKET + PUBLIC_ACCESS_BLOCK % "false", BUCKET + PUBLIC_ACCESS_BLOCK % "var.restrict"),
    (
        "CHK-S3-002",
        BUCKET + PUBLIC_ACCESS_BLOCK.replace("aws_s3_bucket.logs.id", "aws_s3_bucket.other.id") % "true",
        BUCKET
        + """
resource "aws_s3_account_public_access_block" "this" {
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
""",
    ),
    ("CHK-S3-003", BUCKET, BUCKET + ENCRYPTION),
    (
        "CHK-S3-003",
        BUCKET + ENCRYPTION.replace("aws_s3_bucket.logs", "aws_s3_bucket.logs_archive"),
        """
resource "aws_s3_bucket" "logs" {
  bucket = "acme-prod-logs"
  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm = "AES256"
      }
    }
  }
}
""",
    ),
    ("CHK-SG-001", sg_ingress("22", "22", "tcp", '"0.0.0.0/0"'), sg_ingress("22", "22", "tcp", '"10.0.0.0/8"')),
    ("CHK-SG-001", sg_ingress("3000", "3400", "tcp", '"0.0.0.0/0"'), sg_ingress("443", "443", "tcp", '"0.0.0.0/0"')),
    (
        "CHK-SG-001",
        sg_ingress("6379", "6379", "6", '"10.0.0.0/8", "0.0.0.0/0"'),
        sg_ingress("22", "22", "tcp", '"0.0.0.0/0"', kind="egress"),
    ),
    (
        "CHK-SG-001",
        """
resource "aws_security_group_rule" "rdp" {
  type              = "ingress"
  from_port         = 3389
  to_port           = 3389
  protocol          = "tcp"
  ipv6_cidr_blocks  = ["::/0"]
  security_group_id = aws_security_group.win.id
}
""",
        """
resource "aws_security_group_rule" "rdp" {
  type              = "ingress"
  from_port         = var.port
  to_port           = var.port
  protocol          = "tcp"
  cidr_blocks       = ["0.0.0.0/0"]
  security_group_id = aws_security_group.win.id
}
""",
    ),
    (
        "CHK-SG-001",
        """
resource "aws_vpc_security_group_ingress_rule" "pg" {
  security_group_id = aws_security_group.db.id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 5432
  to_port           = 5432
  ip_protocol       = "tcp"
}
""",
        """
resource "aws_vpc_security_group_ingress_rule" "pg" {
  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = aws_security_group.app.id
  from_port                    = 5432
  to_port                      = 5432
  ip_protocol                  = "tcp"
}
""",
    ),
    ("CHK-SG-002", sg_ingress("0", "0", "-1", '"0.0.0.0/0"'), sg_ingress("0", "0", "-1", '"10.0.0.0/16"')),
    (
        "CHK-SG-002",
        sg_ingress("0", "65535", "tcp", '"0.0.0.0/0"'),
        sg_ingress("0", "0", "-1", '"0.0.0.0/0"', kind="egress"),
    ),
    (
        "CHK-SG-002",
        """
resource "aws_vpc_security_group_ingress_rule" "any" {
  security_group_id = aws_security_group.web.id
  cidr_ipv6         = "::/0"
  ip_protocol       = "-1"
}
""",
        """
resource "aws_security_group_rule" "out" {
  type              = "egress"
  from_port         = 0
  to_port           = 0
  protocol          = "-1"
  cidr_blocks       = ["0.0.0.0/0"]
  security_group_id = aws_security_group.web.id
}
""",
    ),
    (
        "CHK-EBS-001",
        'resource "aws_ebs_volume" "data" {\n  availability_zone = "eu-west-1a"\n  size = 100\n}\n',
        'resource "aws_ebs_volume" "data" {\n  availability_zone = "eu-west-1a"\n  size = 100\n  encrypted = true\n}\n',
    ),
    (
        "CHK-EBS-001",
        'resource "aws_ebs_volume" "data" {\n  size = 100\n  encrypted = false\n}\n',
        'resource "aws_ebs_volume" "data" {\n  size = 100\n  encrypted = var.encrypt\n}\n',
    ),
    (
        "CHK-EBS-001",
        """
resource "aws_instance" "app" {
  ami           = data.aws_ami.al2023.id
  instance_type = "t3.micro"
  root_block_device {
    volume_size = 30
  }
}
""",
        """
resource "aws_instance" "app" {
  ami           = data.aws_ami.al2023.id
  instance_type = "t3.micro"
  root_block_device {
    volume_size = 30
    encrypted   = true
  }
}
""",
    ),
    ("CHK-RDS-001", db(""), db("storage_encrypted = true")),
    (
        "CHK-RDS-001",
        db("storage_encrypted = false", "aws_rds_cluster"),
        db("replicate_source_db = aws_db_instance.primary.identifier\n  storage_encrypted = false"),
    ),
    (
        "CHK-EFS-001",
        'resource "aws_efs_file_system" "shared" {\n  creation_token = "shared"\n}\n',
        'resource "aws_efs_file_system" "shared" {\n  creation_token = "shared"\n  encrypted      = true\n}\n',
    ),
    ("CHK-IAM-001", policy('"*"', '"*"'), policy('["s3:GetObject"]', '"*"')),
    ("CHK-IAM-001", policy('["*:*"]', '["*"]'), policy('"*"', '"*"', effect="Deny")),
    ("CHK-IAM-001", policy('"*"', '["*"]'), policy('"*"', '"arn:aws:s3:::acme-prod-logs/*"')),
    (
        "CHK-IAM-001",
        """
resource "aws_iam_role_policy" "admin" {
  role   = aws_iam_role.ci.id
  policy = <<EOF
{
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
}
EOF
}
""",
        """
resource "aws_iam_role_policy" "admin" {
  role   = aws_iam_role.ci.id
  policy = data.aws_iam_policy_document.ci.json
}
""",
    ),
    (
        "CHK-IAM-001",
        """
data "aws_iam_policy_document" "admin" {
  statement {
    actions   = ["*"]
    resources = ["*"]
  }
}
""",
        """
data "aws_iam_policy_document" "admin" {
  statement {
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/*"]
  }
}
""",
    ),
    (
        "CHK-IAM-001",
        """
resource "aws_iam_role" "ci" {
  name               = "ci"
  assume_role_policy = data.aws_iam_policy_document.trust.json
  inline_policy {
    name   = "everything"
    policy = jsonencode({ Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }] })
  }
}
""",
        """
resource "aws_iam_role" "ci" {
  name               = "ci"
  assume_role_policy = jsonencode({ Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }] })
}
""",
    ),
    ("CHK-RDS-002", db(""), db("deletion_protection = true")),
    (
        "CHK-RDS-002",
        db("deletion_protection = false", "aws_rds_cluster"),
        db("deletion_protection = true", "aws_rds_cluster"),
    ),
    ("CHK-RDS-003", db("publicly_accessible = true"), db("publicly_accessible = false")),
    ("CHK-RDS-003", db("publicly_accessible = true", "aws_rds_cluster_instance"), db("")),
    ("CHK-RDS-004", db("backup_retention_period = 0"), db("backup_retention_period = 7")),
    ("CHK-RDS-004", db('backup_retention_period = "0"'), db("")),
    ("CHK-CT-001", trail("enable_logging = false"), trail("enable_log_file_validation = true")),
    ("CHK-CT-002", trail(""), trail("enable_log_file_validation = true")),
    (
        "CHK-KMS-001",
        'resource "aws_kms_key" "logs" {\n  description = "logs"\n}\n',
        'resource "aws_kms_key" "logs" {\n  description = "logs"\n  enable_key_rotation = true\n}\n',
    ),
    (
        "CHK-KMS-001",
        'resource "aws_kms_key" "logs" {\n  enable_key_rotation = false\n}\n',
        'resource "aws_kms_key" "sign" {\n  customer_master_key_spec = "RSA_2048"\n  key_usage = "SIGN_VERIFY"\n}\n',
    ),
    (
        "CHK-EC2-001",
        'resource "aws_instance" "app" {\n  ami = data.aws_ami.al2023.id\n  instance_type = "t3.micro"\n}\n',
        """
resource "aws_instance" "app" {
  ami           = data.aws_ami.al2023.id
  instance_type = "t3.micro"
  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }
}
""",
    ),
    (
        "CHK-EC2-001",
        """
resource "aws_launch_template" "app" {
  name_prefix = "app-"
  metadata_options {
    http_tokens = "optional"
  }
}
""",
        """
resource "aws_launch_template" "app" {
  name_prefix = "app-"
  metadata_options {
    http_endpoint = "disabled"
  }
}
""",
    ),
    ("CHK-LB-001", listener("HTTP", FORWARD), listener("HTTP", REDIRECT % "HTTPS")),
    ("CHK-LB-001", listener("HTTP", REDIRECT % "HTTP"), listener("HTTPS", FORWARD)),
]


@pytest.mark.parametrize(("rule_id", "firing", "quiet"), CASES, ids=[f"{case[0]}-{n}" for n, case in enumerate(CASES)])
def test_rule_fires_on_its_case_and_not_on_the_fixed_one(rule_id: str, firing: str, quiet: str) -> None:
    assert rule_id in rule_ids(scan(firing))
    assert rule_id not in rule_ids(scan(quiet))


def test_every_rule_has_cases() -> None:
    covered = {case[0] for case in CASES} | {case[0] for case in SECRET_CASES}
    assert covered == {rule.id for rule in security.RULES}


def test_rule_ids_are_unique_and_well_formed() -> None:
    ids = [rule.id for rule in security.RULES]
    assert len(ids) == len(set(ids)) >= 15
    assert all(re.fullmatch(r"CHK-[A-Z0-9]+-\d{3}", rule_id) for rule_id in ids)
    assert all(rule.title and rule.description and rule.remediation for rule in security.RULES)


def test_a_finding_carries_its_rule_address_and_the_attribute_line() -> None:
    text = BUCKET.replace("}", '  acl    = "public-read"\n}') + PUBLIC_ACCESS_BLOCK % "true" + ENCRYPTION
    (finding,) = scan(text).findings
    assert finding == security.Finding(
        rule_id="CHK-S3-001",
        severity="critical",
        title="S3 bucket ACL grants public access",
        address="aws_s3_bucket.logs",
        file="main.tf",
        line=line_of(text, "acl"),
        message='acl = "public-read" lets anyone on the internet list and read its objects.',
    )


def test_a_missing_attribute_points_at_the_declaration() -> None:
    text = db("storage_encrypted = true")
    (finding,) = scan(text).findings
    assert (finding.rule_id, finding.line) == ("CHK-RDS-002", line_of(text, "resource"))


def test_each_inline_ingress_block_points_at_its_own_line() -> None:
    text = """
resource "aws_security_group" "bastion" {
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"""
    (finding,) = scan(text).findings
    assert (finding.rule_id, finding.line) == ("CHK-SG-001", line_of(text, "ingress {", nth=1))
    assert finding.message == "Ingress from 0.0.0.0/0 reaches port 22 (SSH)."


def test_without_the_file_text_findings_point_at_the_declaration_or_nowhere() -> None:
    text = db("deletion_protection = true\n  storage_encrypted = false")
    declared = security.scan(changes(text)).findings
    assert [(f.rule_id, f.file, f.line) for f in declared] == [("CHK-RDS-001", "main.tf", line_of(text, "resource"))]
    anonymous = [dataclasses.replace(change, file=None, line=None) for change in changes(text)]
    assert [(f.file, f.line) for f in security.scan(anonymous).findings] == [(None, None)]


@pytest.mark.parametrize(
    ("action", "scanned"),
    [("create", True), ("update", True), ("replace", True), ("no-op", True), ("delete", False)],
)
def test_what_will_exist_is_scanned_and_deleted_resources_are_not(action: plans.Action, scanned: bool) -> None:
    found = security.scan(changes(db(""), action=action))
    assert bool(found.findings) is scanned


# The ``terraform show -json`` shape, as chkmate.domain.tfjson hands it over: typed values, policies as JSON
# strings, unknown values marked, module addresses.
def tf(address: str, after: dict[str, object], *, module: str = "") -> plans.ResourceChange:
    type_, name = address.removeprefix(f"{module}.").split(".")[-2:]
    return plans.ResourceChange(address, type_, name.split("[")[0], "create", after=after, module=module)


UNKNOWN = tfjson.KNOWN_AFTER_APPLY
FULL_BLOCK = dict.fromkeys(
    ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"), True
)
ENCRYPTED = {"rule": [{"apply_server_side_encryption_by_default": [{"sse_algorithm": "AES256"}]}]}

PLAN_JSON_CASES = [
    pytest.param(
        [tf("aws_iam_policy.admin", {"policy": '{"Statement":[{"Effect":"Allow","Action":["*"],"Resource":"*"}]}'})],
        ["CHK-IAM-001"],
        id="policy-as-json-string",
    ),
    pytest.param(
        [tf("aws_iam_policy.admin", {"policy": {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}})],
        ["CHK-IAM-001"],
        id="policy-as-mapping",
    ),
    pytest.param([tf("aws_iam_policy.admin", {"policy": UNKNOWN})], [], id="policy-unknown"),
    pytest.param(
        [
            tf("aws_s3_bucket.logs[0]", {"bucket": "acme-logs", "server_side_encryption_configuration": UNKNOWN}),
            tf("aws_s3_bucket_public_access_block.logs[0]", {"bucket": UNKNOWN, **FULL_BLOCK}),
            tf("aws_s3_bucket_server_side_encryption_configuration.logs[0]", {"bucket": UNKNOWN, **ENCRYPTED}),
        ],
        [],
        id="companions-matched-by-name-when-bucket-unknown",
    ),
    pytest.param(
        [
            tf("aws_s3_bucket.logs", {"bucket": "acme-logs"}),
            tf("aws_s3_bucket_public_access_block.archive", {"bucket": "acme-logs", **FULL_BLOCK}),
            tf("aws_s3_bucket_server_side_encryption_configuration.x", {"bucket": "acme-logs", **ENCRYPTED}),
        ],
        [],
        id="companions-matched-by-bucket-name",
    ),
    pytest.param(
        [
            tf("module.a.aws_s3_bucket.logs", {"bucket": "a-logs"}, module="module.a"),
            tf("module.b.aws_s3_bucket_public_access_block.logs", {"bucket": UNKNOWN, **FULL_BLOCK}, module="module.b"),
            tf(
                "module.a.aws_s3_bucket_server_side_encryption_configuration.logs",
                {"bucket": UNKNOWN},
                module="module.a",
            ),
        ],
        ["CHK-S3-002"],
        id="companions-of-another-module-do-not-count",
    ),
    pytest.param(
        [
            tf(
                "aws_security_group.web",
                {
                    "ingress": [
                        {
                            "from_port": 0,
                            "to_port": 0,
                            "protocol": "-1",
                            "cidr_blocks": [],
                            "ipv6_cidr_blocks": ["::/0"],
                        }
                    ]
                },
            )
        ],
        ["CHK-SG-002"],
        id="ipv6-all-protocols",
    ),
    pytest.param(
        [
            tf(
                "aws_db_instance.main",
                {"storage_encrypted": UNKNOWN, "deletion_protection": True, "publicly_accessible": UNKNOWN},
            )
        ],
        [],
        id="unknown-values-are-not-judged",
    ),
    pytest.param(
        [
            tf(
                "aws_db_instance.main",
                {"storage_encrypted": True, "deletion_protection": False, "backup_retention_period": 0},
            )
        ],
        ["CHK-RDS-002", "CHK-RDS-004"],
        id="typed-values",
    ),
]


@pytest.mark.parametrize(("planned", "expected"), PLAN_JSON_CASES)
def test_rules_read_plan_json_values(planned: list[plans.ResourceChange], expected: list[str]) -> None:
    assert sorted(rule_ids(security.scan(planned))) == expected


# Secrets: a line of a file, the rule it fires (None: it must not fire).
SECRET_CASES = [
    ("CHK-SEC-001", f'  access_key = "{AWS_KEY}"'),
    ("CHK-SEC-001", f"export AWS_ACCESS_KEY_ID={AWS_KEY}"),
    ("CHK-SEC-002", f'  private_key = "{PEM_HEADER}\\nMIIEpAIBAAKCAQEA..."'),
    ("CHK-SEC-002", PEM_HEADER),
    ("CHK-SEC-003", f'  token = "{GITHUB_TOKEN}"'),
    ("CHK-SEC-004", f'  password = "{PASSWORD}"'),
    ("CHK-SEC-004", f'db_password = "{PASSWORD}"'),
    ("CHK-SEC-004", f'  "master_password": "{PASSWORD}",'),
    ("CHK-SEC-004", f'  tags = {{ Name = "x", admin_pwd = "{PASSWORD}" }}'),
    ("CHK-SEC-004", f'  client_secret = "{RANDOM_SECRET}"'),
    ("CHK-SEC-004", f'  api_key = "{RANDOM_SECRET}"'),
]
QUIET_LINES = [
    "  password = var.db_password",
    '  password = "${var.db_password}"',
    "  password = data.aws_secretsmanager_secret_version.db.secret_string",
    '  password = "${data.aws_ssm_parameter.db.value}"',
    '  password = ""',
    '  password_policy = "strict"',
    '  secret_name = "prod/orders/db"',
    '  token = "not-so-random-token-name"',
    '  api_key = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-Ab12Cd"',
    '  http_tokens = "required"',
    '  access_key = "AKIAIOSFODNN7EXAMPLE"',
    '  description = "The password of the admin user"',
]


@pytest.mark.parametrize(("rule_id", "line"), SECRET_CASES)
def test_secret_in_a_file_is_found_and_redacted(rule_id: str, line: str) -> None:
    text = f'resource "aws_db_instance" "main" {{\n{line}\n}}\n'
    report = security.scan([], files={"db.tf": text})
    (finding,) = report.findings
    assert (finding.rule_id, finding.address, finding.file, finding.line) == (rule_id, None, "db.tf", 2)
    for secret in (AWS_KEY, GITHUB_TOKEN, PEM_HEADER, PASSWORD, RANDOM_SECRET):
        assert secret not in finding.message
        assert secret not in security.markdown(report)
    assert "redacted" in finding.message


@pytest.mark.parametrize("line", QUIET_LINES)
def test_references_and_harmless_values_are_not_secrets(line: str) -> None:
    text = f'resource "aws_db_instance" "main" {{\n{line}\n}}\n'
    assert security.scan([], files={"main.tf": text}).findings == ()


def test_a_variable_default_takes_the_variable_name() -> None:
    text = f"""
variable "db_password" {{
  type      = string
  sensitive = true
  default   = "{PASSWORD}"
}}

variable "environment" {{
  default = "{PASSWORD}"
}}
"""
    (finding,) = security.scan([], files={"variables.tf": text}).findings
    assert (finding.rule_id, finding.line) == ("CHK-SEC-004", line_of(text, "default", nth=0))
    assert finding.message == "db_password is assigned a hard-coded password (value redacted)."


def test_a_plan_scan_also_scans_the_files() -> None:
    text = db(f'storage_encrypted = true\n  deletion_protection = true\n  master_password = "{PASSWORD}"')
    assert rule_ids(scan(text)) == ["CHK-SEC-004"]


def finding(rule_id: str, severity: security.Severity) -> security.Finding:
    return security.Finding(rule_id, severity, "title", "aws_x.y", "main.tf", 1, "message")


@pytest.mark.parametrize(
    ("findings", "expected"),
    [
        ([], 100),
        ([("A", "critical")], 75),
        ([("A", "high")], 90),
        ([("A", "medium")], 96),
        ([("A", "low")], 99),
        ([("A", "critical"), ("B", "critical")], 50),
        ([("A", "critical"), ("A", "critical")], 62),  # 100 - 25 - 12.5, rounded down
        ([("A", "high")] * 3, 80),  # 100 - 10 - 5 - 5
        ([("A", "low"), ("A", "low")], 98),  # 98.5 rounded down
        ([("A", "high"), ("B", "medium"), ("C", "low"), ("C", "low")], 84),  # 100 - 10 - 4 - 1.5, rounded down
        ([(f"R{n}", "critical") for n in range(5)], 0),
    ],
)
def test_score(findings: list[tuple[str, security.Severity]], expected: int) -> None:
    assert security.score(finding(rule_id, severity) for rule_id, severity in findings) == expected


def test_report_orders_counts_and_scores() -> None:
    report = security.report(
        [finding("L", "low"), finding("C", "critical"), finding("H", "high"), finding("H", "high")]
    )
    assert [f.rule_id for f in report.findings] == ["C", "H", "H", "L"]
    assert report.counts == {"critical": 1, "high": 2, "medium": 0, "low": 1}
    assert report.score == 100 - 25 - 15 - 1


@pytest.mark.parametrize(
    ("severities", "threshold", "fails"),
    [
        ([], "low", False),
        (["low"], "low", True),
        (["low"], "medium", False),
        (["medium", "high"], "high", True),
        (["high"], "critical", False),
        (["critical"], "critical", True),
    ],
)
def test_fails_at_or_above_the_threshold(
    severities: list[security.Severity], threshold: security.Severity, fails: bool
) -> None:
    report = security.report(finding("R", severity) for severity in severities)
    assert security.fails(report, threshold) is fails


def test_to_status() -> None:
    report = security.report([finding("C", "critical"), finding("M", "medium"), finding("M", "medium")])
    status = security.to_status(report)
    assert status.to_wire() == {"score": 69, "critical": 1, "high": 0, "medium": 2, "low": 0}


def test_markdown_table() -> None:
    report = security.report(
        [
            finding("CHK-A-001", "high"),
            security.Finding("CHK-SEC-004", "critical", "Secret | hard-coded", None, "vars.tf", None, "a\nb | c"),
        ]
    )
    assert security.markdown(report) == "\n".join(
        [
            "| Severity | Rule | Resource | Location | Finding |",
            "|---|---|---|---|---|",
            "| critical | `CHK-SEC-004` Secret \\| hard-coded | — | `vars.tf` | a b \\| c |",
            "| high | `CHK-A-001` title | `aws_x.y` | `main.tf:1` | message |",
        ]
    )


def test_markdown_limit_and_empty_report() -> None:
    report = security.report([finding(f"R{n}", "low") for n in range(5)])
    table = security.markdown(report, limit=2)
    assert table.count("| low |") == 2
    assert table.endswith("…and 3 more findings not shown.")
    assert security.markdown(security.report([])) == "No security findings."


def test_docs_list_every_rule_with_its_severity_and_title() -> None:
    rows = re.findall(
        r"^\| `(CHK-[A-Z0-9]+-\d{3})` \| (\w+) \| ([^|]+) \|", DOCS.read_text(encoding="utf-8"), re.MULTILINE
    )
    assert {rule_id: (severity, title.strip()) for rule_id, severity, title in rows} == {
        rule.id: (rule.severity, rule.title) for rule in security.RULES
    }
