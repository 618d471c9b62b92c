resource "aws_s3_bucket" "site" {
  bucket = "acme-site"
  acl    = "private"
}

resource "aws_s3_bucket_acl" "uploads" {
  bucket = aws_s3_bucket.site.id
  acl    = var.acl
}
