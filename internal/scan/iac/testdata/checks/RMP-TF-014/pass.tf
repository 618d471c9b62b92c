resource "aws_iam_policy" "read" {
  name = "read"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = "s3:GetObject", Resource = "*" },
      { Effect = "Deny", Action = "*", Resource = "*" },
    ]
  })
}

data "aws_iam_policy_document" "doc" {
  statement {
    actions   = ["*"]
    resources = ["arn:aws:s3:::acme-data/*"]
  }
}
