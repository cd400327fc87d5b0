variable "owner" {
  description = "Team owning the sandbox."
  type        = string
}

variable "release" {
  description = "Version being deployed."
  type        = string
  default     = "1.4.2"
}

variable "feature_flags" {
  description = "Feature switches of the release."
  type        = map(bool)
  default = {
    new_checkout = true
    dark_mode    = false
  }
}
