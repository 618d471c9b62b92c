# want
resource "aws_ebs_volume" "data" {
  availability_zone = "eu-west-1a"
  size              = 100
}

resource "aws_instance" "web" {
  ami           = "ami-12345678"
  instance_type = "t3.micro"

  root_block_device {
    # want
    encrypted = false
  }
}
