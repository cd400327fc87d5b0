# The second version: every kind of change. Captured by ../../capture.py.
variable "name" {
  type    = string
  default = "two"
}

variable "password" {
  type      = string
  default   = "hunter2-v2"
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

resource "terraform_data" "added" {
  input = "hello"
}

resource "terraform_data" "secret" {
  input = { password = var.password, user = "admin" }
}

module "pair" {
  source = "../modules/pair"
  name   = var.name
}

output "name" {
  value = terraform_data.updated.output
}

output "password" {
  value     = var.password
  sensitive = true
}

output "greeting" {
  value = "hello"
}
