resource "aws_db_instance" "main" {
  engine              = "mysql"
  instance_class      = "db.t3.micro"
  publicly_accessible = false
}
