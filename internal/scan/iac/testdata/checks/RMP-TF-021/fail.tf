# want
resource "aws_kms_key" "data" {
  description = "data"
}

resource "aws_kms_key" "off" {
  description         = "off"
  # want
  enable_key_rotation = false
}
