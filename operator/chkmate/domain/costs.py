"""Monthly cost estimates of a plan's resources from the bundled AWS price table. Pure: no I/O, no clock.

:func:`estimate` prices the configuration a plan leaves behind (every resource whose ``after`` exists and that is
not deleted) and compares it with a baseline: the previous applied plan's configuration when given, else the
plan's own ``before`` values. Each resource gets a :class:`Line` saying how it was priced:

``priced``
    from the table; the note names any placeholder usage included or any part left out.
``free``
    AWS bills nothing for it (VPCs, subnets, security groups, IAM, ``terraform_data``...): $0, known.
``usage-based``
    all its cost depends on use (S3, Lambda, log groups, on-demand DynamoDB): $0 fixed part, unit prices in
    the note.
``not-priced``
    an unknown type, instance class, engine or value not known before apply. No amount (never $0); such
    resources are left out of the total, listed in :attr:`Estimate.unpriced`, and left out of the delta on
    both sides (a resize to an unknown instance type is no saving).

Lines are rounded to cents (half up) and totals are sums of rounded lines, so a breakdown always adds up.
Prices, placeholders and the 730-hour month live in :mod:`chkmate.domain.price_table`; docs/costs.md explains
the formulas.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from chkmate.api import plans as plan_api
from chkmate.domain import plans
from chkmate.domain import price_table as table

Pricing = Literal["priced", "free", "usage-based", "not-priced"]
Attrs = Mapping[str, Any]

CENT = Decimal("0.01")
HOURS = table.HOURS_PER_MONTH
ZERO = Decimal(0)
# Commercial engines carry license-included prices the table does not hold.
LICENSED_ENGINES = ("oracle", "sqlserver", "db2", "custom-")
# A data source's address: optional module path, then ``data.`` (module keys may hold dots inside brackets).
_DATA_ADDRESS = re.compile(r"^(module\.[^.\[]+(\[[^\]]*\])?\.)*data\.")


@dataclasses.dataclass(frozen=True)
class Line:
    """One resource of the priced configuration. ``monthly`` is None exactly when it is not priced."""

    address: str
    type: str
    pricing: Pricing
    monthly: Decimal | None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Estimate:
    """The monthly cost of a plan's resulting configuration and its change against the baseline."""

    monthly: Decimal
    delta: Decimal
    lines: tuple[Line, ...]
    region: str  # the region whose prices were used
    notes: tuple[str, ...] = ()  # e.g. a region fallback
    currency: str = table.CURRENCY

    @property
    def priced(self) -> int:
        """Resources with a known fixed price, free ones included."""
        return sum(1 for line in self.lines if line.pricing in ("priced", "free"))

    @property
    def usage_based(self) -> tuple[str, ...]:
        return tuple(line.address for line in self.lines if line.pricing == "usage-based")

    @property
    def unpriced(self) -> tuple[str, ...]:
        return tuple(line.address for line in self.lines if line.pricing == "not-priced")


def estimate(
    changes: Iterable[plans.ResourceChange],
    *,
    region: str | None,
    previous: Iterable[plans.ResourceChange] | None = None,
) -> Estimate:
    """Price the configuration after ``changes`` in ``region`` (us-east-1 prices when it has none).

    ``delta`` is the total minus the baseline's: ``previous`` (the last applied plan; its ``after`` side) when
    given, else the ``before`` side of ``changes``.
    """
    changes = tuple(changes)
    used, notes = _region(region)
    lines = tuple(price(*resource, used) for resource in _configuration(changes, after=True))
    baseline = _configuration(changes, after=False) if previous is None else _configuration(previous, after=True)
    baseline_lines = [price(*resource, used) for resource in baseline]
    return Estimate(_total(lines), _delta(lines, baseline_lines), lines, used, notes)


def price(address: str, type_: str, attrs: Attrs, region: str) -> Line:
    """The line of one resource configured with ``attrs``, priced in ``region`` (a :data:`table.REGIONS` key)."""
    prices = table.REGIONS[region]
    if type_ in table.FREE_TYPES or type_.startswith(table.FREE_PREFIXES):
        return Line(address, type_, "free", ZERO)
    pricer = PRICERS.get(type_)
    if pricer is None:
        return Line(address, type_, "not-priced", None, f"no price for resource type {type_}")
    try:
        quote = pricer(attrs, prices)
    except NotPriced as e:
        return Line(address, type_, "not-priced", None, e.reason)
    return Line(address, type_, quote.pricing, quote.monthly.quantize(CENT, ROUND_HALF_UP), "; ".join(quote.notes))


def format_money(amount: Decimal, *, signed: bool = False) -> str:
    """``$1,234.56``, ``-$3.10``; with ``signed`` (for deltas) positive amounts read ``+$3.10``."""
    cents = amount.quantize(CENT, ROUND_HALF_UP)
    sign = "-" if cents < 0 else "+" if signed and cents > 0 else ""
    return f"{sign}${abs(cents):,.2f}"


def to_status(result: Estimate) -> plan_api.CostEstimate:
    return plan_api.CostEstimate(
        currency=result.currency,
        monthly=format_money(result.monthly),
        delta=format_money(result.delta, signed=True),
        unpriced=len(result.unpriced),
    )


class NotPriced(Exception):
    """Why a resource cannot be priced; turned into a ``not-priced`` line by :func:`price`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Quote:
    """What a pricer found: the unrounded monthly amount and notes about it."""

    monthly: Decimal
    notes: tuple[str, ...] = ()
    pricing: Pricing = "priced"


def _region(region: str | None) -> tuple[str, tuple[str, ...]]:
    if region is None:
        return table.DEFAULT_REGION, (f"No region given: {table.DEFAULT_REGION} prices used.",)
    if region in table.REGIONS:
        return region, ()
    return table.DEFAULT_REGION, (f"No prices for region {region}: {table.DEFAULT_REGION} prices used.",)


def _configuration(changes: Iterable[plans.ResourceChange], *, after: bool) -> Iterator[tuple[str, str, Attrs]]:
    """(address, type, attributes) of each managed resource on one side of the changes: after or before them."""
    absent = ("delete", "read") if after else ("create", "read")
    for change in changes:
        attrs = change.after if after else change.before
        if attrs is not None and change.action not in absent and not _DATA_ADDRESS.match(change.address):
            yield change.address, change.type, attrs


def _total(lines: Iterable[Line]) -> Decimal:
    return sum((line.monthly for line in lines if line.monthly is not None), ZERO)


def _delta(lines: Sequence[Line], baseline: Sequence[Line]) -> Decimal:
    """After minus baseline, leaving out on both sides a resource not priced on either: no unknown is a saving."""
    unknown = {line.address for line in (*lines, *baseline) if line.monthly is None}
    after = _total(line for line in lines if line.address not in unknown)
    before = _total(line for line in baseline if line.address not in unknown)
    return after - before


# Reading attribute values: absent, unresolved (``${...}`` from HCL) and sensitive values are told apart.


def _known(attrs: Attrs, key: str) -> Any:
    value = attrs.get(key)
    if value == plans.SENSITIVE or (isinstance(value, str) and "${" in value):
        raise NotPriced(f"{key} is not known before apply")
    return value


def _text(attrs: Attrs, key: str, default: str | None = None) -> str:
    value = _known(attrs, key)
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value:
        raise NotPriced(f"{key} is not set or not known before apply")
    return value


def _number(attrs: Attrs, key: str, default: Decimal | None = None) -> Decimal:
    value = _known(attrs, key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise NotPriced(f"{key} is not set or not known before apply")
    try:
        number = Decimal(str(value))
    except ArithmeticError as e:
        raise NotPriced(f"{key} is not a number: {value!r}") from e
    if not number.is_finite():
        raise NotPriced(f"{key} is not a number: {value!r}")
    return number


def _flag(attrs: Attrs, key: str) -> bool:
    value = _known(attrs, key)
    return value is True or value == "true"


def _blocks(attrs: Attrs, key: str) -> list[Attrs]:
    """Nested blocks: a list of objects in plan JSON and parsed HCL; a single object is accepted too."""
    value = attrs.get(key)
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [block for block in value if isinstance(block, Mapping)]
    return []


def _hourly(prices: Mapping[str, Decimal], key: str, what: str) -> Decimal:
    hourly = prices.get(key)
    if hourly is None:
        raise NotPriced(f"no price for {what} {key}")
    return hourly


def _money(amount: Decimal) -> str:
    return f"${amount.normalize():f}"


# Pricers: one per resource type, (attributes, region prices) → Quote, or NotPriced.


def _instance(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    instance_type = _text(attrs, "instance_type")
    monthly = _hourly(table.EC2_HOURLY, instance_type, "instance type") * prices.compute_factor * HOURS
    notes: list[str] = []
    for key in ("root_block_device", "ebs_block_device"):
        for device in _blocks(attrs, key):
            try:
                monthly += _volume(device, prices, type_key="volume_type", size_key="volume_size")
            except NotPriced as e:
                notes.append(f"{key} not included: {e.reason}")
    if _flag(attrs, "associate_public_ip_address"):
        monthly += prices.public_ipv4_hour * HOURS
        notes.append("includes a public IPv4 address")
    return Quote(monthly, tuple(notes))


def _ebs_volume(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    return Quote(_volume(attrs, prices, type_key="type", size_key="size"))


def _volume(attrs: Attrs, prices: table.RegionPrices, *, type_key: str, size_key: str) -> Decimal:
    """Monthly price of one EBS volume: storage, plus IOPS and throughput beyond what the type includes."""
    volume_type = _text(attrs, type_key, default="gp2")  # the provider's default, and the AMI fallback
    per_gb = _hourly(prices.ebs_gb_month, volume_type, "volume type")
    monthly = _number(attrs, size_key) * per_gb
    if volume_type == "gp3":
        extra_iops = max(_number(attrs, "iops", table.GP3_FREE_IOPS) - table.GP3_FREE_IOPS, ZERO)
        throughput = _number(attrs, "throughput", table.GP3_FREE_THROUGHPUT)
        extra_throughput = max(throughput - table.GP3_FREE_THROUGHPUT, ZERO)
        monthly += extra_iops * prices.ebs_gp3_iops_month + extra_throughput * prices.ebs_gp3_throughput_month
    elif volume_type == "io1":
        monthly += _number(attrs, "iops") * prices.ebs_piops_month
    elif volume_type == "io2":
        monthly += _io2_iops(_number(attrs, "iops"), prices.ebs_piops_month)
    return monthly


def _io2_iops(iops: Decimal, rate: Decimal) -> Decimal:
    monthly, left = ZERO, iops
    for size, share in table.IO2_IOPS_TIERS:
        used = min(left, size)
        monthly += used * rate * share
        left -= used
    return monthly


def _db_instance(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    engine = _text(attrs, "engine", default="mysql")  # replicas inherit their source's engine
    if engine.startswith(LICENSED_ENGINES):
        raise NotPriced(f"engine {engine} is license-included and not in the price table")
    instance_class = _text(attrs, "instance_class")
    hourly = _hourly(table.RDS_HOURLY, instance_class, "instance class") * prices.compute_factor
    copies = 2 if _flag(attrs, "multi_az") else 1  # a standby of the same class and storage
    notes: list[str] = ["Multi-AZ: instance and storage doubled"] if copies == 2 else []
    try:
        storage = _db_storage(attrs, prices)
    except NotPriced as e:
        storage = ZERO
        notes.append(f"storage not included: {e.reason}")
    return Quote((hourly * HOURS + storage) * copies, tuple(notes))


def _db_storage(attrs: Attrs, prices: table.RegionPrices) -> Decimal:
    """Monthly price of an RDS instance's storage (one copy)."""
    size = _number(attrs, "allocated_storage")
    has_iops = attrs.get("iops") not in (None, 0)
    storage_type = _text(attrs, "storage_type", default="io1" if has_iops else "gp2")  # the provider's default
    monthly = size * _hourly(prices.rds_gb_month, storage_type, "storage type")
    if storage_type in ("io1", "io2"):
        monthly += _number(attrs, "iops") * prices.rds_piops_month
    elif storage_type == "gp3":
        large = size >= table.RDS_GP3_LARGE_GB
        free_iops = table.RDS_GP3_LARGE_FREE_IOPS if large else table.GP3_FREE_IOPS
        free_throughput = table.RDS_GP3_LARGE_FREE_THROUGHPUT if large else table.GP3_FREE_THROUGHPUT
        extra_iops = max(_number(attrs, "iops", free_iops) - free_iops, ZERO)
        extra_throughput = max(_number(attrs, "storage_throughput", free_throughput) - free_throughput, ZERO)
        monthly += extra_iops * prices.rds_gp3_iops_month + extra_throughput * prices.rds_gp3_throughput_month
    return monthly


def _rds_cluster(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    if attrs.get("db_cluster_instance_class") is not None:
        raise NotPriced("Multi-AZ DB clusters are not in the price table")
    note = "Aurora storage and I/O are billed by use; instances are priced as aws_rds_cluster_instance"
    return Quote(ZERO, (note,), "usage-based")


def _rds_cluster_instance(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    instance_class = _text(attrs, "instance_class")
    if instance_class == "db.serverless":
        acu = _money(table.AURORA_SERVERLESS_ACU_HOUR)
        return Quote(ZERO, (f"Aurora Serverless v2: {acu} per ACU-hour in us-east-1",), "usage-based")
    hourly = _hourly(table.AURORA_HOURLY, instance_class, "Aurora instance class")
    return Quote(hourly * prices.compute_factor * HOURS)


def _nat_gateway(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    data = table.NAT_GB_PER_MONTH * prices.nat_gb
    note = f"includes {table.NAT_GB_PER_MONTH} GB processed per month (placeholder) at {_money(prices.nat_gb)}/GB"
    return Quote(prices.nat_hour * HOURS + data, (note,))


def _load_balancer(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    kind = _text(attrs, "load_balancer_type", default="application")
    hourly = _hourly(prices.lb_hour, kind, "load balancer type")
    unit = prices.lb_capacity_unit_hour[kind]
    note = f"includes {table.LB_CAPACITY_UNITS} capacity unit per hour (placeholder) at {_money(unit)}"
    return Quote((hourly + table.LB_CAPACITY_UNITS * unit) * HOURS, (note,))


def _classic_load_balancer(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    data = table.ELB_GB_PER_MONTH * prices.elb_gb
    note = f"includes {table.ELB_GB_PER_MONTH} GB processed per month (placeholder) at {_money(prices.elb_gb)}/GB"
    return Quote(prices.elb_hour * HOURS + data, (note,))


def _eip(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    return Quote(prices.public_ipv4_hour * HOURS, ("public IPv4 address, billed whether attached or idle",))


def _eks_cluster(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    return Quote(prices.eks_cluster_hour * HOURS, ("control plane, standard support",))


def _eks_node_group(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    if _text(attrs, "capacity_type", default="ON_DEMAND") != "ON_DEMAND":
        raise NotPriced("spot capacity has no list price")
    instance_types = _known(attrs, "instance_types") or ["t3.medium"]  # the EKS default
    if not isinstance(instance_types, Sequence) or isinstance(instance_types, str):
        raise NotPriced("instance_types is not a list")
    scaling = _blocks(attrs, "scaling_config")
    nodes = _number(scaling[0], "desired_size") if scaling else Decimal(1)
    hourly = _hourly(table.EC2_HOURLY, str(instance_types[0]), "instance type") * prices.compute_factor
    return Quote(hourly * HOURS * nodes, (f"{nodes} nodes of {instance_types[0]}; node volumes not included",))


def _elasticache_cluster(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    nodes = _number(attrs, "num_cache_nodes", Decimal(1))
    return Quote(_cache_node(attrs, prices) * nodes)


def _elasticache_replication_group(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    if attrs.get("num_node_groups") is not None:
        shards = _number(attrs, "num_node_groups")
        nodes = shards * (_number(attrs, "replicas_per_node_group", ZERO) + 1)
    else:
        nodes = _number(attrs, "num_cache_clusters", Decimal(1))
    return Quote(_cache_node(attrs, prices) * nodes, (f"{nodes} nodes",))


def _cache_node(attrs: Attrs, prices: table.RegionPrices) -> Decimal:
    node_type = _text(attrs, "node_type")
    return _hourly(table.ELASTICACHE_HOURLY, node_type, "node type") * prices.compute_factor * HOURS


def _dynamodb_table(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    storage = f"storage {_money(table.DYNAMODB_STORAGE_GB_MONTH)}/GB-month billed by use"
    if _text(attrs, "billing_mode", default="PROVISIONED") == "PAY_PER_REQUEST":
        return Quote(ZERO, (f"on-demand: billed per request; {storage}",), "usage-based")
    monthly = ZERO
    for capacity in [attrs, *_blocks(attrs, "global_secondary_index")]:
        reads = _number(capacity, "read_capacity", ZERO) * prices.dynamodb_rcu_hour
        writes = _number(capacity, "write_capacity", ZERO) * prices.dynamodb_wcu_hour
        monthly += (reads + writes) * HOURS
    return Quote(monthly, (f"provisioned capacity, indexes included; {storage}",))


def _s3_bucket(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    note = f"Standard storage {_money(prices.s3_standard_gb_month)}/GB-month, plus requests and transfer"
    return Quote(ZERO, (note,), "usage-based")


def _lambda_function(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    requests, compute = _money(table.LAMBDA_REQUEST_MILLION), _money(table.LAMBDA_GB_SECOND)
    return Quote(ZERO, (f"{requests} per million requests and {compute} per GB-second",), "usage-based")


def _log_group(attrs: Attrs, prices: table.RegionPrices) -> Quote:
    ingest, storage = _money(prices.logs_ingest_gb), _money(table.LOGS_STORAGE_GB_MONTH)
    return Quote(ZERO, (f"ingestion {ingest}/GB and storage {storage}/GB-month",), "usage-based")


PRICERS: Mapping[str, Callable[[Attrs, table.RegionPrices], Quote]] = {
    "aws_instance": _instance,
    "aws_ebs_volume": _ebs_volume,
    "aws_db_instance": _db_instance,
    "aws_rds_cluster": _rds_cluster,
    "aws_rds_cluster_instance": _rds_cluster_instance,
    "aws_nat_gateway": _nat_gateway,
    "aws_lb": _load_balancer,
    "aws_alb": _load_balancer,
    "aws_elb": _classic_load_balancer,
    "aws_eip": _eip,
    "aws_eks_cluster": _eks_cluster,
    "aws_eks_node_group": _eks_node_group,
    "aws_elasticache_cluster": _elasticache_cluster,
    "aws_elasticache_replication_group": _elasticache_replication_group,
    "aws_dynamodb_table": _dynamodb_table,
    "aws_s3_bucket": _s3_bucket,
    "aws_lambda_function": _lambda_function,
    "aws_cloudwatch_log_group": _log_group,
}
