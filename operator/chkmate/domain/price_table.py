"""The bundled AWS price table that :mod:`chkmate.domain.costs` reads. Data only: no I/O, no logic beyond building it.

Source: AWS public list prices, approximate, as listed in 2025 (table dated 2025-11; on-demand, Linux, no
upfront, no free tier, no savings plans). See ``docs/costs.md`` for the formulas and the placeholders.

Instance-hour prices are us-east-1 figures; other regions multiply them by the region's ``compute_factor``
(the ratio of its list prices to us-east-1's, averaged over the families here). Storage and network
prices are per region. Every figure is a :class:`~decimal.Decimal` built from a string, so sums are exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from decimal import Decimal

CURRENCY = "USD"
# AWS bills a month as 730 hours (365 days * 24 hours / 12 months); so does its pricing calculator.
HOURS_PER_MONTH = Decimal(730)
DEFAULT_REGION = "us-east-1"

# Usage placeholders for resources with a fixed hourly charge and a usage charge (docs/costs.md):
NAT_GB_PER_MONTH = Decimal(100)  # data processed by a NAT gateway
ELB_GB_PER_MONTH = Decimal(100)  # data processed by a classic load balancer
LB_CAPACITY_UNITS = Decimal(1)  # average LCU / NLCU / GLCU in use by an ALB / NLB / GWLB, every hour

# gp3 volumes include this much performance; more is billed (EBS: always; RDS: by allocated size).
GP3_FREE_IOPS = Decimal(3000)
GP3_FREE_THROUGHPUT = Decimal(125)  # MiB/s
RDS_GP3_LARGE_GB = Decimal(400)  # from this size on, RDS gp3 includes 12,000 IOPS and 500 MiB/s
RDS_GP3_LARGE_FREE_IOPS = Decimal(12000)
RDS_GP3_LARGE_FREE_THROUGHPUT = Decimal(500)
# io2 IOPS are tiered: the first 32,000 at the full rate, the next 32,000 at 70 %, the rest at 49 %.
IO2_IOPS_TIERS: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(32000), Decimal(1)),
    (Decimal(32000), Decimal("0.70")),
    (Decimal("Infinity"), Decimal("0.49")),
)

LAMBDA_REQUEST_MILLION = Decimal("0.20")
LAMBDA_GB_SECOND = Decimal("0.0000166667")
AURORA_SERVERLESS_ACU_HOUR = Decimal("0.12")
DYNAMODB_STORAGE_GB_MONTH = Decimal("0.25")
LOGS_STORAGE_GB_MONTH = Decimal("0.03")


@dataclasses.dataclass(frozen=True)
class RegionPrices:
    """Prices of one region. Per hour unless the name says otherwise; GB-month is per GB per month."""

    compute_factor: Decimal  # multiplies the us-east-1 instance-hour tables below (EC2, RDS, ElastiCache)
    ebs_gb_month: Mapping[str, Decimal]  # by volume type
    ebs_gp3_iops_month: Decimal  # per IOPS above GP3_FREE_IOPS
    ebs_gp3_throughput_month: Decimal  # per MiB/s above GP3_FREE_THROUGHPUT
    ebs_piops_month: Decimal  # io1, and io2's first tier
    rds_gb_month: Mapping[str, Decimal]  # by storage type, single-AZ
    rds_piops_month: Decimal  # io1 / io2
    rds_gp3_iops_month: Decimal
    rds_gp3_throughput_month: Decimal
    nat_hour: Decimal
    nat_gb: Decimal
    lb_hour: Mapping[str, Decimal]  # by load_balancer_type
    lb_capacity_unit_hour: Mapping[str, Decimal]  # LCU / NLCU / GLCU by load_balancer_type
    elb_hour: Decimal
    elb_gb: Decimal
    public_ipv4_hour: Decimal
    eks_cluster_hour: Decimal
    s3_standard_gb_month: Decimal
    logs_ingest_gb: Decimal
    dynamodb_rcu_hour: Decimal
    dynamodb_wcu_hour: Decimal


def _d(**values: str) -> dict[str, Decimal]:
    return {key: Decimal(value) for key, value in values.items()}


_US = RegionPrices(
    compute_factor=Decimal(1),
    ebs_gb_month=_d(gp2="0.10", gp3="0.08", io1="0.125", io2="0.125", st1="0.045", sc1="0.015", standard="0.05"),
    ebs_gp3_iops_month=Decimal("0.005"),
    ebs_gp3_throughput_month=Decimal("0.04"),
    ebs_piops_month=Decimal("0.065"),
    rds_gb_month=_d(gp2="0.115", gp3="0.115", io1="0.125", io2="0.125", standard="0.10"),
    rds_piops_month=Decimal("0.10"),
    rds_gp3_iops_month=Decimal("0.02"),
    rds_gp3_throughput_month=Decimal("0.08"),
    nat_hour=Decimal("0.045"),
    nat_gb=Decimal("0.045"),
    lb_hour=_d(application="0.0225", network="0.0225", gateway="0.0125"),
    lb_capacity_unit_hour=_d(application="0.008", network="0.006", gateway="0.004"),
    elb_hour=Decimal("0.025"),
    elb_gb=Decimal("0.008"),
    public_ipv4_hour=Decimal("0.005"),
    eks_cluster_hour=Decimal("0.10"),
    s3_standard_gb_month=Decimal("0.023"),
    logs_ingest_gb=Decimal("0.50"),
    dynamodb_rcu_hour=Decimal("0.00013"),
    dynamodb_wcu_hour=Decimal("0.00065"),
)

REGIONS: Mapping[str, RegionPrices] = {
    "us-east-1": _US,
    "us-west-2": _US,  # Oregon lists the same prices as N. Virginia for everything here
    "eu-west-1": RegionPrices(
        compute_factor=Decimal("1.11"),
        ebs_gb_month=_d(gp2="0.11", gp3="0.088", io1="0.138", io2="0.138", st1="0.05", sc1="0.0168", standard="0.055"),
        ebs_gp3_iops_month=Decimal("0.0055"),
        ebs_gp3_throughput_month=Decimal("0.044"),
        ebs_piops_month=Decimal("0.072"),
        rds_gb_month=_d(gp2="0.127", gp3="0.127", io1="0.138", io2="0.138", standard="0.11"),
        rds_piops_month=Decimal("0.11"),
        rds_gp3_iops_month=Decimal("0.022"),
        rds_gp3_throughput_month=Decimal("0.088"),
        nat_hour=Decimal("0.048"),
        nat_gb=Decimal("0.048"),
        lb_hour=_d(application="0.0252", network="0.0252", gateway="0.014"),
        lb_capacity_unit_hour=_d(application="0.008", network="0.006", gateway="0.004"),
        elb_hour=Decimal("0.028"),
        elb_gb=Decimal("0.008"),
        public_ipv4_hour=Decimal("0.005"),
        eks_cluster_hour=Decimal("0.10"),
        s3_standard_gb_month=Decimal("0.023"),
        logs_ingest_gb=Decimal("0.57"),
        dynamodb_rcu_hour=Decimal("0.000147"),
        dynamodb_wcu_hour=Decimal("0.000735"),
    ),
    "eu-central-1": RegionPrices(
        compute_factor=Decimal("1.18"),
        ebs_gb_month=_d(
            gp2="0.119", gp3="0.0952", io1="0.149", io2="0.149", st1="0.054", sc1="0.018", standard="0.059"
        ),
        ebs_gp3_iops_month=Decimal("0.006"),
        ebs_gp3_throughput_month=Decimal("0.0476"),
        ebs_piops_month=Decimal("0.078"),
        rds_gb_month=_d(gp2="0.137", gp3="0.137", io1="0.149", io2="0.149", standard="0.127"),
        rds_piops_month=Decimal("0.12"),
        rds_gp3_iops_month=Decimal("0.024"),
        rds_gp3_throughput_month=Decimal("0.095"),
        nat_hour=Decimal("0.052"),
        nat_gb=Decimal("0.052"),
        lb_hour=_d(application="0.027", network="0.027", gateway="0.015"),
        lb_capacity_unit_hour=_d(application="0.0088", network="0.0066", gateway="0.0044"),
        elb_hour=Decimal("0.03"),
        elb_gb=Decimal("0.008"),
        public_ipv4_hour=Decimal("0.005"),
        eks_cluster_hour=Decimal("0.10"),
        s3_standard_gb_month=Decimal("0.0245"),
        logs_ingest_gb=Decimal("0.63"),
        dynamodb_rcu_hour=Decimal("0.0001586"),
        dynamodb_wcu_hour=Decimal("0.000793"),
    ),
}

# Sizes in order; within a family each size costs twice the one before it, as AWS lists them.
_BURSTABLE = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge")
_STANDARD = ("large", "xlarge", "2xlarge", "4xlarge")
_GRAVITON = ("medium", *_STANDARD)


def _doubling(prefix: str, sizes: Sequence[str], first: str) -> dict[str, Decimal]:
    """``{prefix.size: price}`` where ``first`` is the hourly price of the first size and each next size doubles."""
    return {f"{prefix}.{size}": Decimal(first) * 2**step for step, size in enumerate(sizes)}


def _families(prefix: str, families: Mapping[str, tuple[Sequence[str], str]]) -> dict[str, Decimal]:
    table: dict[str, Decimal] = {}
    for family, (sizes, first) in families.items():
        table.update(_doubling(f"{prefix}{family}", sizes, first))
    return table


# EC2 on-demand Linux, us-east-1, per hour.
EC2_HOURLY: Mapping[str, Decimal] = _families(
    "",
    {
        "t3": (_BURSTABLE, "0.0052"),
        "t3a": (_BURSTABLE, "0.0047"),
        "t4g": (_BURSTABLE, "0.0042"),
        "m5": (_STANDARD, "0.096"),
        "m6i": (_STANDARD, "0.096"),
        "m7i": (_STANDARD, "0.1008"),
        "m6g": (_GRAVITON, "0.0385"),
        "m7g": (_GRAVITON, "0.0408"),
        "c5": (_STANDARD, "0.085"),
        "c6i": (_STANDARD, "0.085"),
        "c6g": (_GRAVITON, "0.034"),
        "c7g": (_GRAVITON, "0.0363"),
        "r5": (_STANDARD, "0.126"),
        "r6i": (_STANDARD, "0.126"),
        "r6g": (_GRAVITON, "0.0504"),
        "r7g": (_GRAVITON, "0.0536"),
    },
)

# RDS single-AZ, MySQL / MariaDB / PostgreSQL (PostgreSQL lists up to ~5 % higher), us-east-1, per hour.
RDS_HOURLY: Mapping[str, Decimal] = _families(
    "db.",
    {
        "t3": (_BURSTABLE[1:], "0.017"),
        "t4g": (_BURSTABLE[1:], "0.016"),
        "m5": (_STANDARD, "0.171"),
        "m6i": (_STANDARD, "0.171"),
        "m6g": (_STANDARD, "0.152"),
        "m7g": (_STANDARD, "0.168"),
        "r5": (_STANDARD, "0.24"),
        "r6i": (_STANDARD, "0.24"),
        "r6g": (_STANDARD, "0.215"),
        "r7g": (_STANDARD, "0.239"),
    },
)

# Aurora (MySQL- and PostgreSQL-compatible, standard storage configuration), us-east-1, per instance-hour.
AURORA_HOURLY: Mapping[str, Decimal] = _families(
    "db.",
    {
        "t3": (("medium", "large"), "0.082"),
        "t4g": (("medium", "large"), "0.073"),
        "r5": (_STANDARD, "0.29"),
        "r6i": (_STANDARD, "0.29"),
        "r6g": (_STANDARD, "0.26"),
        "r7g": (_STANDARD, "0.276"),
    },
)

# ElastiCache (Redis OSS / Memcached) on-demand nodes, us-east-1, per node-hour.
ELASTICACHE_HOURLY: Mapping[str, Decimal] = _families(
    "cache.",
    {
        "t3": (("micro", "small", "medium"), "0.017"),
        "t4g": (("micro", "small", "medium"), "0.016"),
        "m5": (_STANDARD, "0.156"),
        "m6g": (_STANDARD, "0.149"),
        "r5": (_STANDARD, "0.216"),
        "r6g": (_STANDARD, "0.206"),
        "r7g": (_STANDARD, "0.219"),
    },
)

# Resources AWS does not bill for by themselves (what runs inside or through them is billed elsewhere).
FREE_TYPES: frozenset[str] = frozenset(
    {
        "terraform_data",
        "null_resource",
        "aws_vpc",
        "aws_subnet",
        "aws_internet_gateway",
        "aws_egress_only_internet_gateway",
        "aws_route_table",
        "aws_route",
        "aws_route_table_association",
        "aws_main_route_table_association",
        "aws_network_acl",
        "aws_network_acl_rule",
        "aws_vpc_dhcp_options",
        "aws_vpc_dhcp_options_association",
        "aws_default_vpc",
        "aws_default_subnet",
        "aws_default_route_table",
        "aws_default_network_acl",
        "aws_default_security_group",
        "aws_security_group",
        "aws_security_group_rule",
        "aws_vpc_security_group_ingress_rule",
        "aws_vpc_security_group_egress_rule",
        "aws_network_interface",
        "aws_eip_association",
        "aws_volume_attachment",
        "aws_key_pair",
        "aws_launch_template",
        "aws_placement_group",
        "aws_iam_role",
        "aws_iam_policy",
        "aws_iam_role_policy",
        "aws_iam_role_policy_attachment",
        "aws_iam_policy_attachment",
        "aws_iam_user",
        "aws_iam_user_policy",
        "aws_iam_user_policy_attachment",
        "aws_iam_group",
        "aws_iam_group_policy_attachment",
        "aws_iam_group_membership",
        "aws_iam_instance_profile",
        "aws_iam_openid_connect_provider",
        "aws_iam_service_linked_role",
        "aws_lb_listener",
        "aws_lb_listener_rule",
        "aws_lb_target_group",
        "aws_lb_target_group_attachment",
        "aws_alb_listener",
        "aws_alb_target_group",
        "aws_db_subnet_group",
        "aws_db_parameter_group",
        "aws_db_option_group",
        "aws_rds_cluster_parameter_group",
        "aws_elasticache_subnet_group",
        "aws_elasticache_parameter_group",
        "aws_s3_bucket_policy",
        "aws_s3_bucket_acl",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_ownership_controls",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_lifecycle_configuration",
        "aws_lambda_permission",
        "aws_cloudwatch_log_stream",
    }
)
# Providers whose resources live only in the Terraform state.
FREE_PREFIXES: tuple[str, ...] = ("random_", "time_", "tls_")
