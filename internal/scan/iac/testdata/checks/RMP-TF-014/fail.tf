resource "aws_iam_policy" "admin" {
  name = "admin"
  # want
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "*"
      Resource = "*"
    }]
  })
}

resource "aws_iam_role_policy" "heredoc" {
  role = aws_iam_role.ci.id
  # want
  policy = <<EOT
{
  "Version": "2012-10-17",
  "Statement": {"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}
}
EOT
}

data "aws_iam_policy_document" "doc" {
  # want
  statement {
    actions   = ["*"]
    resources = ["*"]
  }
}
