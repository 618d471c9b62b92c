resource "aws_security_group" "bastion" {
  name = "bastion"

  # want
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8", "0.0.0.0/0"]
  }
}

# want
resource "aws_security_group_rule" "rdp" {
  type              = "ingress"
  from_port         = 3000
  to_port           = 4000
  protocol          = "tcp"
  cidr_blocks       = ["0.0.0.0/0"]
  security_group_id = aws_security_group.bastion.id
}

# want
resource "aws_vpc_security_group_ingress_rule" "all" {
  security_group_id = aws_security_group.bastion.id
  cidr_ipv6         = "::/0"
  ip_protocol       = "-1"
}
