# The first version: everything is created. Captured by ../../capture.py.
variable "name" {
  type    = string
  default = "one"
}

variable "password" {
  type      = string
  default   = "hunter2-v1"
  sensitive = true
}

resource "terraform_data" "same" {
  input = "unchanged"
}

resource "terraform_data" "updated" {
  input = var.name
}

resource "terraform_data" "replaced" {
  triggers_replace = [var.name]
}

resource "terraform_data" "replaced_first" {
  triggers_replace = [var.name]
  lifecycle {
    create_before_destroy = true
  }
}

resource "terraform_data" "removed" {
  input = "bye"
}

resource "terraform_data" "secret" {
  input = { password = var.password, user = "admin" }
}

module "pair" {
  source = "../modules/pair"
  name   = var.name
}

# Read at apply time: its path depends on an id only known then (capture.py writes other.tfstate).
data "terraform_remote_state" "later" {
  backend = "local"
  config  = { path = "${trimsuffix(terraform_data.same.id, terraform_data.same.id)}other.tfstate" }
}

output "name" {
  value = terraform_data.updated.output
}

output "password" {
  value     = var.password
  sensitive = true
}
