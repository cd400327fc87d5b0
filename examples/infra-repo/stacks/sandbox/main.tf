# A sandbox that needs no cloud account: Terraform's built-in terraform_data resource stores values in the
# state and nothing else, so terraform plans and applies this stack offline, with no provider and no
# credentials. Use it to try chkmate's terraform engine, drift checks and the GitHub workflow.

terraform {
  required_version = ">= 1.4.0"
}

locals {
  services = toset(["api", "worker", "scheduler"])
}

resource "terraform_data" "release" {
  input = {
    version = var.release
    owner   = var.owner
  }
}

# One per service; a new release replaces them (as a deployment would).
resource "terraform_data" "service" {
  for_each         = local.services
  input            = { name = each.key, release = var.release }
  triggers_replace = [var.release]
}

resource "terraform_data" "feature_flags" {
  input = var.feature_flags
}
