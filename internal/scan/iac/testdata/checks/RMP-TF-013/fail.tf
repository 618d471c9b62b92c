resource "aws_db_instance" "main" {
  engine              = "mysql"
  instance_class      = "db.t3.micro"
  # want
  publicly_accessible = true
}
