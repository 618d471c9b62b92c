resource "aws_s3_bucket" "site" {
  bucket = "acme-site"
  # want
  acl    = "public-read"
}

resource "aws_s3_bucket_acl" "uploads" {
  bucket = aws_s3_bucket.site.id
  # want
  acl    = "public-read-write"
}
