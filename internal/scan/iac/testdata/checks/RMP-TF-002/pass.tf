resource "aws_security_group" "db" {
  ingress {
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.app.id]
  }
}

resource "aws_vpc_security_group_ingress_rule" "redis" {
  security_group_id = aws_security_group.db.id
  cidr_ipv4         = "10.0.0.0/16"
  from_port         = 6379
  to_port           = 6379
  ip_protocol       = "tcp"
}
