# A web application: an application load balancer in front of EC2 instances in private subnets, a PostgreSQL
# database, an S3 bucket for uploads and one for load balancer logs, and a bastion host for operators.

locals {
  name = "shop-${var.environment}"
  tags = {
    Application = "shop"
    Environment = var.environment
    ManagedBy   = "chkmate"
  }
}

module "network" {
  source             = "../../modules/network"
  name               = local.name
  cidr_block         = "10.20.0.0/16"
  availability_zones = var.availability_zones
  tags               = local.tags
}
