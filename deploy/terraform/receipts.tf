# Receipt PDFs (S3_BUCKET): private, encrypted at rest. The engine writes each receipt once under
# receipts/ and hands clients short-lived presigned URLs, so nothing in it is ever public.

resource "aws_s3_bucket" "receipts" {
  bucket_prefix = "${local.name}-receipts-"
}

resource "aws_s3_bucket_public_access_block" "receipts" {
  bucket                  = aws_s3_bucket.receipts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "receipts" {
  bucket = aws_s3_bucket.receipts.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "receipts" {
  bucket = aws_s3_bucket.receipts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# The web app fetches a receipt with fetch(), which follows the API's redirect to the presigned
# URL: the bucket must let the app's origin read.
resource "aws_s3_bucket_cors_configuration" "receipts" {
  bucket = aws_s3_bucket.receipts.id
  cors_rule {
    allowed_methods = ["GET"]
    allowed_origins = [var.public_base_url]
    max_age_seconds = 3600
  }
}
