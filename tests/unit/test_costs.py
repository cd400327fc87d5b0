"""Cost estimates: real Terraform text, parsed with ``domain.hcl`` and turned into plan changes, priced against
figures computed by hand from the bundled table (us-east-1 unless a test says otherwise; a month is 730 hours).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from chkmate.domain import costs, hcl, plans

META_ARGUMENTS = ("count", "for_each", "depends_on", "lifecycle", "provider")


def resources(tf: str) -> dict[str, tuple[str, str, Mapping[str, Any]]]:
    """``{address: (type, name, attributes)}`` of the resources in ``tf``, ``count``/``for_each`` expanded."""
    found: dict[str, tuple[str, str, Mapping[str, Any]]] = {}
    for block in hcl.parse(tf).get("resource", []):
        for type_, named in block.items():
            for name, body in named.items():
                attrs = {key: value for key, value in body.items() if key not in META_ARGUMENTS}
                for suffix in _instance_keys(body):
                    found[f"{type_}.{name}{suffix}"] = (type_, name, attrs)
    return found


def _instance_keys(body: Mapping[str, Any]) -> list[str]:
    if "count" in body:
        return [f"[{index}]" for index in range(body["count"])]
    if "for_each" in body:
        return [f'["{key}"]' for key in body["for_each"]]
    return [""]


def creates(tf: str) -> list[plans.ResourceChange]:
    return plan("", tf)


def plan(before_tf: str, after_tf: str) -> list[plans.ResourceChange]:
    """The changes Terraform would plan to go from ``before_tf`` to ``after_tf`` (no replacements)."""
    before, after = resources(before_tf), resources(after_tf)
    changes = []
    for address in sorted(before.keys() | after.keys()):
        type_, name, _ = after.get(address) or before[address]
        old, new = before.get(address, (None, None, None))[2], after.get(address, (None, None, None))[2]
        action: plans.Action = (
            "create" if old is None else "delete" if new is None else "no-op" if old == new else "update"
        )
        changes.append(plans.ResourceChange(address, type_, name, action, before=old, after=new))
    return changes


def only_line(tf: str, region: str = "us-east-1") -> costs.Line:
    (line,) = costs.estimate(creates(tf), region=region).lines
    return line


STACK = """
resource "aws_vpc" "main" {
  cidr_block           = "10.0.0.0/16"
  enable_dns_hostnames = true
}

resource "aws_subnet" "public" {
  count             = 2
  vpc_id            = aws_vpc.main.id
  cidr_block        = cidrsubnet(aws_vpc.main.cidr_block, 8, count.index)
  availability_zone = data.aws_availability_zones.available.names[count.index]
}

resource "aws_subnet" "private" {
  count      = 2
  vpc_id     = aws_vpc.main.id
  cidr_block = cidrsubnet(aws_vpc.main.cidr_block, 8, count.index + 10)
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}

resource "aws_eip" "nat" {
  domain = "vpc"
}

resource "aws_nat_gateway" "main" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public[0].id
}

resource "aws_security_group" "web" {
  name   = "web"
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "web" {
  count                  = 2
  ami                    = "ami-0c55b159cbfafe1f0"
  instance_type          = "t3.medium"
  subnet_id              = aws_subnet.private[count.index].id
  vpc_security_group_ids = [aws_security_group.web.id]
  root_block_device {
    volume_size = 20
    volume_type = "gp3"
  }
  tags = { Name = "web-${count.index}" }
}

resource "aws_db_subnet_group" "main" {
  name       = "main"
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_db_instance" "main" {
  identifier           = "app"
  engine               = "postgres"
  engine_version       = "16.3"
  instance_class       = "db.t3.large"
  allocated_storage    = 100
  storage_type         = "gp3"
  multi_az             = true
  db_subnet_group_name = aws_db_subnet_group.main.name
  username             = "app"
  password             = var.db_password
  skip_final_snapshot  = true
}

resource "aws_lb" "web" {
  name               = "web"
  load_balancer_type = "application"
  subnets            = aws_subnet.public[*].id
  security_groups    = [aws_security_group.web.id]
}

resource "aws_lb_target_group" "web" {
  name     = "web"
  port     = 80
  protocol = "HTTP"
  vpc_id   = aws_vpc.main.id
}
"""


class TestStack:
    def test_total_of_a_small_web_stack(self) -> None:
        # 2 * t3.medium (0.0416 * 730 = 30.368) with 20 GB gp3 root (20 * 0.08 = 1.60)  = 2 * 31.97
        # db.t3.large Multi-AZ: (0.136 * 730 + 100 * 0.115) * 2 = (99.28 + 11.50) * 2  = 221.56
        # NAT: 0.045 * 730 + 100 GB * 0.045 = 32.85 + 4.50                               =  37.35
        # ALB: (0.0225 + 1 LCU * 0.008) * 730 = 22.265                                   =  22.27
        # EIP: 0.005 * 730                                                                =   3.65
        result = costs.estimate(creates(STACK), region="us-east-1")
        assert result.monthly == Decimal("348.77")
        assert result.delta == Decimal("348.77")  # everything is new
        assert result.currency == "USD"
        assert result.notes == ()
        assert result.unpriced == ()

    def test_breakdown_adds_up_and_tells_free_from_priced(self) -> None:
        result = costs.estimate(creates(STACK), region="us-east-1")
        lines = {line.address: line for line in result.lines}
        assert lines["aws_instance.web[0]"].monthly == lines["aws_instance.web[1]"].monthly == Decimal("31.97")
        assert lines["aws_db_instance.main"].monthly == Decimal("221.56")
        assert "Multi-AZ" in lines["aws_db_instance.main"].note
        assert "placeholder" in lines["aws_nat_gateway.main"].note
        for address in ("aws_vpc.main", "aws_subnet.public[1]", "aws_security_group.web", "aws_lb_target_group.web"):
            assert (lines[address].pricing, lines[address].monthly) == ("free", Decimal(0))
        assert sum(line.monthly or 0 for line in result.lines) == result.monthly
        assert result.priced == len(result.lines) == 15

    def test_status_and_money_formatting(self) -> None:
        status = costs.to_status(costs.estimate(creates(STACK), region="us-east-1"))
        assert status.to_wire() == {"currency": "USD", "monthly": "$348.77", "delta": "+$348.77", "unpriced": 0}


def ec2(instance_type: str, extra: str = "") -> str:
    return f'resource "aws_instance" "app" {{\n  ami = "ami-1"\n  instance_type = "{instance_type}"\n{extra}}}\n'


PRICED = [
    pytest.param(ec2("t3.micro"), "7.59", id="t3.micro: 0.0104 * 730"),
    pytest.param(ec2("t3a.2xlarge"), "219.58", id="t3a.2xlarge: 0.3008 * 730"),
    pytest.param(ec2("m7g.4xlarge"), "476.54", id="m7g.4xlarge: 0.6528 * 730"),
    pytest.param(
        ec2("m5.xlarge", "  root_block_device {\n    volume_size = 50\n  }\n"),
        "145.16",
        id="m5.xlarge + 50 GB root, gp2 by default: 140.16 + 5.00",
    ),
    pytest.param(
        ec2("t4g.small", "  associate_public_ip_address = true\n"),
        "15.91",
        id="t4g.small + public IPv4: 12.264 + 3.65",
    ),
    pytest.param(
        ec2(
            "c6i.2xlarge",
            '  ebs_block_device {\n    device_name = "/dev/sdf"\n    volume_type = "io1"\n'
            "    volume_size = 100\n    iops = 1000\n  }\n",
        ),
        "325.70",
        id="c6i.2xlarge + io1 100 GB 1000 IOPS: 248.20 + 12.50 + 65.00",
    ),
    pytest.param(
        'resource "aws_ebs_volume" "data" {\n  availability_zone = "us-east-1a"\n  size = 100\n}\n',
        "10.00",
        id="ebs gp2 by default: 100 * 0.10",
    ),
    pytest.param(
        'resource "aws_ebs_volume" "data" {\n  availability_zone = "us-east-1a"\n  type = "gp3"\n  size = 500\n'
        "  iops = 6000\n  throughput = 250\n}\n",
        "60.00",
        id="ebs gp3 500 GB, 6000 IOPS, 250 MiB/s: 40 + 3000 * 0.005 + 125 * 0.04",
    ),
    pytest.param(
        'resource "aws_ebs_volume" "data" {\n  availability_zone = "us-east-1a"\n  type = "io2"\n  size = 100\n'
        "  iops = 40000\n}\n",
        "2456.50",
        id="ebs io2 40k IOPS tiered: 12.50 + 32000 * 0.065 + 8000 * 0.065 * 0.7",
    ),
    pytest.param(
        'resource "aws_ebs_volume" "logs" {\n  availability_zone = "us-east-1a"\n  type = "st1"\n  size = 500\n}\n',
        "22.50",
        id="ebs st1: 500 * 0.045",
    ),
    pytest.param(
        'resource "aws_ebs_volume" "cold" {\n  availability_zone = "us-east-1a"\n  type = "sc1"\n  size = 1000\n}\n',
        "15.00",
        id="ebs sc1: 1000 * 0.015",
    ),
    pytest.param(
        'resource "aws_db_instance" "db" {\n  engine = "mysql"\n  instance_class = "db.t3.micro"\n'
        "  allocated_storage = 20\n}\n",
        "14.71",
        id="rds db.t3.micro, 20 GB gp2 by default: 12.41 + 2.30",
    ),
    pytest.param(
        'resource "aws_db_instance" "db" {\n  engine = "postgres"\n  instance_class = "db.m5.large"\n'
        "  allocated_storage = 200\n  iops = 3000\n}\n",
        "449.83",
        id="rds db.m5.large, io1 because iops is set: 124.83 + 200 * 0.125 + 3000 * 0.10",
    ),
    pytest.param(
        'resource "aws_db_instance" "db" {\n  engine = "postgres"\n  instance_class = "db.r6g.large"\n'
        '  allocated_storage = 500\n  storage_type = "gp3"\n  iops = 15000\n  storage_throughput = 600\n}\n',
        "282.45",
        id="rds gp3 ≥ 400 GB above 12k IOPS / 500 MiB/s: 156.95 + 57.50 + 3000 * 0.02 + 100 * 0.08",
    ),
    pytest.param(
        'resource "aws_rds_cluster_instance" "one" {\n  cluster_identifier = "c"\n  instance_class = "db.r6g.large"\n'
        '  engine = "aurora-postgresql"\n}\n',
        "189.80",
        id="aurora instance: 0.26 * 730",
    ),
    pytest.param('resource "aws_nat_gateway" "nat" {\n  subnet_id = "s"\n}\n', "37.35", id="nat: 32.85 + 4.50"),
    pytest.param(
        'resource "aws_lb" "nlb" {\n  load_balancer_type = "network"\n}\n',
        "20.81",
        id="nlb: (0.0225 + 0.006) * 730 = 20.805",
    ),
    pytest.param('resource "aws_alb" "alb" {\n  internal = true\n}\n', "22.27", id="aws_alb is an application lb"),
    pytest.param(
        'resource "aws_elb" "classic" {\n  availability_zones = ["us-east-1a"]\n}\n',
        "19.05",
        id="classic elb: 0.025 * 730 + 100 GB * 0.008",
    ),
    pytest.param('resource "aws_eip" "ip" {\n  domain = "vpc"\n}\n', "3.65", id="eip: 0.005 * 730"),
    pytest.param(
        'resource "aws_eks_cluster" "k" {\n  name = "k"\n  role_arn = "arn"\n}\n', "73.00", id="eks: 0.10 * 730"
    ),
    pytest.param(
        'resource "aws_eks_node_group" "ng" {\n  cluster_name = "k"\n  instance_types = ["m6i.large"]\n'
        "  scaling_config {\n    desired_size = 3\n    min_size = 1\n    max_size = 5\n  }\n}\n",
        "210.24",
        id="eks node group: 3 * 0.096 * 730",
    ),
    pytest.param(
        'resource "aws_elasticache_cluster" "c" {\n  engine = "redis"\n  node_type = "cache.t3.medium"\n'
        "  num_cache_nodes = 2\n}\n",
        "99.28",
        id="elasticache: 2 * 0.068 * 730",
    ),
    pytest.param(
        'resource "aws_elasticache_replication_group" "g" {\n  replication_group_id = "g"\n'
        '  description = "g"\n  node_type = "cache.r6g.large"\n  num_cache_clusters = 2\n}\n',
        "300.76",
        id="elasticache replication group: 2 * 0.206 * 730",
    ),
    pytest.param(
        'resource "aws_dynamodb_table" "t" {\n  name = "t"\n  hash_key = "id"\n  read_capacity = 10\n'
        '  write_capacity = 5\n  global_secondary_index {\n    name = "by_user"\n    hash_key = "user"\n'
        '    projection_type = "ALL"\n    read_capacity = 5\n    write_capacity = 5\n  }\n}\n',
        "6.17",
        id="dynamodb provisioned with a GSI: (15 * 0.00013 + 10 * 0.00065) * 730",
    ),
]


class TestPriced:
    @pytest.mark.parametrize(("tf", "monthly"), PRICED)
    def test_monthly_price(self, tf: str, monthly: str) -> None:
        line = only_line(tf)
        assert (line.pricing, line.monthly) == ("priced", Decimal(monthly)), line.note

    def test_root_volume_without_a_size_is_left_out_and_said(self) -> None:
        line = only_line(ec2("t3.micro", '  root_block_device {\n    volume_type = "gp3"\n  }\n'))
        assert line.monthly == Decimal("7.59")
        assert "root_block_device not included" in line.note


FREE_AND_USAGE = [
    pytest.param('resource "terraform_data" "x" {\n  input = "a"\n}\n', "free", id="terraform_data"),
    pytest.param('resource "null_resource" "x" {}\n', "free", id="null_resource"),
    pytest.param('resource "random_password" "x" {\n  length = 16\n}\n', "free", id="random_*"),
    pytest.param('resource "aws_iam_role" "x" {\n  assume_role_policy = "{}"\n}\n', "free", id="iam role"),
    pytest.param('resource "aws_route_table" "x" {\n  vpc_id = "v"\n}\n', "free", id="route table"),
    pytest.param('resource "aws_s3_bucket" "x" {\n  bucket = "b"\n}\n', "usage-based", id="s3"),
    pytest.param(
        'resource "aws_lambda_function" "x" {\n  function_name = "f"\n  runtime = "python3.12"\n}\n',
        "usage-based",
        id="lambda",
    ),
    pytest.param('resource "aws_cloudwatch_log_group" "x" {\n  name = "/app"\n}\n', "usage-based", id="logs"),
    pytest.param(
        'resource "aws_dynamodb_table" "x" {\n  name = "t"\n  hash_key = "id"\n  billing_mode = "PAY_PER_REQUEST"\n}\n',
        "usage-based",
        id="dynamodb on-demand",
    ),
    pytest.param('resource "aws_rds_cluster" "x" {\n  engine = "aurora-postgresql"\n}\n', "usage-based", id="aurora"),
    pytest.param(
        'resource "aws_rds_cluster_instance" "x" {\n  instance_class = "db.serverless"\n}\n',
        "usage-based",
        id="aurora serverless v2",
    ),
]


class TestFreeAndUsageBased:
    @pytest.mark.parametrize(("tf", "pricing"), FREE_AND_USAGE)
    def test_known_with_no_fixed_charge(self, tf: str, pricing: costs.Pricing) -> None:
        line = only_line(tf)
        assert (line.pricing, line.monthly) == (pricing, Decimal(0))

    def test_usage_based_lines_give_unit_prices_and_are_listed(self) -> None:
        result = costs.estimate(creates('resource "aws_s3_bucket" "x" {\n  bucket = "b"\n}\n'), region="eu-central-1")
        assert "$0.0245/GB-month" in result.lines[0].note
        assert (result.usage_based, result.priced, result.unpriced) == (("aws_s3_bucket.x",), 0, ())


NOT_PRICED = [
    pytest.param('resource "aws_sagemaker_endpoint" "x" {\n  name = "e"\n}\n', "no price for resource type", id="type"),
    pytest.param(ec2("x2iedn.32xlarge"), "no price for instance type x2iedn.32xlarge", id="instance type"),
    pytest.param(ec2("${var.instance_type}"), "instance_type is not known before apply", id="unresolved"),
    pytest.param(
        'resource "aws_instance" "x" {\n  instance_type = var.size\n}\n',
        "instance_type is not known before apply",
        id="expression",
    ),
    pytest.param('resource "aws_instance" "x" {\n  ami = "a"\n}\n', "instance_type is not set", id="missing"),
    pytest.param(
        'resource "aws_db_instance" "x" {\n  engine = "oracle-ee"\n  instance_class = "db.m5.large"\n}\n',
        "license-included",
        id="commercial engine",
    ),
    pytest.param(
        'resource "aws_db_instance" "x" {\n  instance_class = "db.x2g.large"\n}\n',
        "no price for instance class db.x2g.large",
        id="instance class",
    ),
    pytest.param(
        'resource "aws_eks_node_group" "x" {\n  capacity_type = "SPOT"\n}\n', "spot capacity", id="spot nodes"
    ),
    pytest.param(
        'resource "aws_ebs_volume" "x" {\n  snapshot_id = "snap-1"\n}\n', "size is not set", id="size from snapshot"
    ),
]


class TestNotPriced:
    @pytest.mark.parametrize(("tf", "reason"), NOT_PRICED)
    def test_never_counted_as_zero(self, tf: str, reason: str) -> None:
        (change,) = creates(tf)
        micro = creates('resource "aws_instance" "micro" {\n  instance_type = "t3.micro"\n}\n')
        result = costs.estimate([change, *micro], region="us-east-1")
        line = result.lines[0]
        assert (line.pricing, line.monthly) == ("not-priced", None)
        assert reason in line.note
        assert result.unpriced == (change.address,)
        assert result.priced == 1
        assert result.monthly == result.delta == Decimal("7.59")  # the t3.micro alone
        assert costs.to_status(result).unpriced == 1

    def test_sensitive_value(self) -> None:
        change = plans.ResourceChange(
            "aws_instance.x", "aws_instance", "x", "create", after={"instance_type": plans.SENSITIVE}
        )
        assert costs.estimate([change], region="us-east-1").lines[0].note == "instance_type is not known before apply"


class TestRegions:
    @pytest.mark.parametrize(
        ("region", "tf", "monthly"),
        [
            pytest.param("eu-central-1", ec2("t3.medium"), "35.83", id="compute factor: 0.0416 * 1.18 * 730"),
            pytest.param("eu-west-1", ec2("m5.large"), "77.79", id="compute factor: 0.096 * 1.11 * 730"),
            pytest.param("us-west-2", ec2("t3.medium"), "30.37", id="Oregon as N. Virginia"),
            pytest.param(
                "eu-west-1",
                'resource "aws_ebs_volume" "x" {\n  type = "gp3"\n  size = 100\n}\n',
                "8.80",
                id="regional storage: 100 * 0.088",
            ),
            pytest.param(
                "eu-west-1",
                'resource "aws_nat_gateway" "x" {}\n',
                "39.84",
                id="regional nat: 0.048 * 730 + 100 * 0.048",
            ),
        ],
    )
    def test_regional_prices(self, region: str, tf: str, monthly: str) -> None:
        result = costs.estimate(creates(tf), region=region)
        assert (result.region, result.notes, result.monthly) == (region, (), Decimal(monthly))

    @pytest.mark.parametrize(
        ("region", "note"),
        [
            ("ap-south-1", "No prices for region ap-south-1: us-east-1 prices used."),
            (None, "No region given: us-east-1 prices used."),
        ],
    )
    def test_unknown_region_falls_back_to_us_east_1_and_says_so(self, region: str | None, note: str) -> None:
        result = costs.estimate(creates(ec2("t3.medium")), region=region)
        assert (result.region, result.notes, result.monthly) == ("us-east-1", (note,), Decimal("30.37"))


class TestDelta:
    def test_resize_prices_the_new_size_against_the_old(self) -> None:
        result = costs.estimate(plan(ec2("t3.medium"), ec2("t3.large")), region="us-east-1")
        assert (result.monthly, result.delta) == (Decimal("60.74"), Decimal("30.37"))
        assert costs.to_status(result).delta == "+$30.37"

    def test_delete_reduces_and_leaves_no_line(self) -> None:
        vpc = 'resource "aws_vpc" "main" {\n  cidr_block = "10.0.0.0/16"\n}\n'
        result = costs.estimate(plan(vpc + ec2("t3.medium"), vpc), region="us-east-1")
        assert [line.address for line in result.lines] == ["aws_vpc.main"]
        assert (result.monthly, result.delta) == (Decimal(0), Decimal("-30.37"))
        assert costs.to_status(result).delta == "-$30.37"

    def test_replace_counts_once_with_its_new_configuration(self) -> None:
        (update,) = plan(ec2("t3.medium"), ec2("t3.large"))
        result = costs.estimate([dataclasses.replace(update, action="replace")], region="us-east-1")
        assert len(result.lines) == 1
        assert (result.monthly, result.delta) == (Decimal("60.74"), Decimal("30.37"))

    def test_unchanged_resources_count_in_the_total_not_in_the_delta(self) -> None:
        result = costs.estimate(plan(STACK, STACK), region="us-east-1")
        assert (result.monthly, result.delta) == (Decimal("348.77"), Decimal(0))

    def test_count_scales_and_delta_is_against_the_previous_applied_plan(self) -> None:
        two = ec2("t3.medium", "  count = 2\n")
        three = ec2("t3.medium", "  count = 3\n")
        changes = plan(two, three)
        assert [c.action for c in changes] == ["no-op", "no-op", "create"]
        assert costs.estimate(changes, region="us-east-1").delta == Decimal("30.37")
        # The last applied plan had one instance (the second was created outside of it): delta 3 - 1.
        result = costs.estimate(changes, region="us-east-1", previous=creates(ec2("t3.medium")))
        assert (result.monthly, result.delta) == (Decimal("91.11"), Decimal("60.74"))

    def test_for_each_instances_are_priced_apart(self) -> None:
        tf = ec2("t3.small", "  for_each = { a = 1, b = 2 }\n")
        result = costs.estimate(creates(tf), region="us-east-1")
        assert [line.address for line in result.lines] == ['aws_instance.app["a"]', 'aws_instance.app["b"]']
        assert result.monthly == Decimal("30.36")  # 2 * 0.0208 * 730 = 2 * 15.184 → 2 * 15.18

    def test_unpriced_resources_move_neither_total_nor_delta(self) -> None:
        result = costs.estimate(plan(ec2("t3.medium"), ec2("p5.48xlarge")), region="us-east-1")
        assert (result.monthly, result.delta, result.unpriced) == (Decimal(0), Decimal(0), ("aws_instance.app",))

    def test_data_sources_are_not_resources(self) -> None:
        data = [
            plans.ResourceChange("data.aws_ami.ubuntu", "aws_ami", "ubuntu", "read", after={}),
            plans.ResourceChange("module.net.data.aws_vpc.x", "aws_vpc", "x", "no-op", before={}, after={}),
        ]
        result = costs.estimate([*data, *creates(ec2("t3.micro"))], region="us-east-1")
        assert [line.address for line in result.lines] == ["aws_instance.app"]
        assert result.delta == Decimal("7.59")

    def test_module_resources_are_priced(self) -> None:
        (change,) = creates(ec2("t3.micro"))
        moved = dataclasses.replace(change, address='module.app["x"].aws_instance.app', module='module.app["x"]')
        assert costs.estimate([moved], region="us-east-1").monthly == Decimal("7.59")


class TestFormatMoney:
    @pytest.mark.parametrize(
        ("amount", "signed", "text"),
        [
            ("1234.56", False, "$1,234.56"),
            ("1234567.891", False, "$1,234,567.89"),
            ("-3.1", False, "-$3.10"),
            ("3.1", True, "+$3.10"),
            ("-3.1", True, "-$3.10"),
            ("0", True, "$0.00"),
            ("-0.004", True, "$0.00"),
            ("0.005", False, "$0.01"),
        ],
    )
    def test_format(self, amount: str, signed: bool, text: str) -> None:
        assert costs.format_money(Decimal(amount), signed=signed) == text
