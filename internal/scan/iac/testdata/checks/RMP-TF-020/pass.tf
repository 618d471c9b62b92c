resource "aws_db_instance" "main" {
  engine                      = "postgres"
  instance_class              = "db.t3.micro"
  username                    = "app"
  manage_master_user_password = true
}

resource "random_password" "db" {
  length = 32
}

resource "aws_rds_cluster" "aurora" {
  engine          = "aurora-postgresql"
  master_password = random_password.db.result
}
