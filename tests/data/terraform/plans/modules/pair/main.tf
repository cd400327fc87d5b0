variable "name" {
  type = string
}

resource "terraform_data" "member" {
  count = 2
  input = "${var.name}-${count.index}"
}
