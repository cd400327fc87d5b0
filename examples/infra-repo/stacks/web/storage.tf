resource "aws_s3_bucket" "uploads" {
  bucket = "${local.name}-uploads"
}

resource "aws_s3_bucket_public_access_block" "uploads" {
  bucket                  = aws_s3_bucket.uploads.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "uploads" {
  bucket = aws_s3_bucket.uploads.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
  }
}

# Load balancer access logs. No public access block yet: chkmate flags it (CHK-S3-002).
resource "aws_s3_bucket" "logs" {
  bucket        = "${local.name}-alb-logs"
  force_destroy = true
}

resource "aws_cloudwatch_log_group" "web" {
  name              = "/shop/${var.environment}/web"
  retention_in_days = 30
}
