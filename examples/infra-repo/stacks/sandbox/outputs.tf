output "release" {
  description = "The release deployed."
  value       = terraform_data.release.output.version
}

output "services" {
  description = "Services of the release."
  value       = sort([for name, service in terraform_data.service : name])
}
