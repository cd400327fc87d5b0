output "url" {
  description = "Address of the load balancer."
  value       = "http://${aws_lb.web.dns_name}"
}

output "database_endpoint" {
  description = "Host and port of the database."
  value       = aws_db_instance.main.endpoint
}

output "web_instances" {
  description = "How many web servers run."
  value       = var.instance_count
}
