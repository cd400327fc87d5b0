variable "environment" {
  description = "production or staging; .chkmate.yml sets it for each environment."
  type        = string
}

variable "region" {
  description = "AWS region of the stack."
  type        = string
  default     = "eu-west-1"
}

variable "availability_zones" {
  description = "Zones the subnets and instances are spread over."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b"]
}

variable "instance_count" {
  description = "Web servers behind the load balancer."
  type        = number
  default     = 2
}

variable "instance_type" {
  description = "EC2 instance type of the web servers."
  type        = string
  default     = "t3.medium"
}

variable "ami_id" {
  description = "Machine image of the web servers (Amazon Linux 2023 in eu-west-1)."
  type        = string
  default     = "ami-0d64bb532e0502c46"
}

variable "db_instance_class" {
  description = "RDS instance class of the PostgreSQL database."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_multi_az" {
  description = "Run a standby database in a second zone."
  type        = bool
  default     = false
}

variable "db_storage_gb" {
  description = "Allocated database storage, in GB."
  type        = number
  default     = 100
}

variable "admin_cidr" {
  description = "Addresses allowed to reach the bastion over SSH."
  type        = string
  default     = "0.0.0.0/0"
}
