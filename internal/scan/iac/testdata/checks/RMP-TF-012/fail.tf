resource "aws_db_instance" "main" {
  engine            = "postgres"
  instance_class    = "db.t3.micro"
  allocated_storage = 20
  # want
  storage_encrypted = false
}

# want
resource "aws_rds_cluster" "aurora" {
  engine = "aurora-postgresql"
}
