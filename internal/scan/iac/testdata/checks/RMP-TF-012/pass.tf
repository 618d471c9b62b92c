resource "aws_db_instance" "main" {
  engine            = "postgres"
  instance_class    = "db.t3.micro"
  allocated_storage = 20
  storage_encrypted = true
}

resource "aws_rds_cluster" "aurora" {
  engine            = "aurora-postgresql"
  storage_encrypted = true
}
