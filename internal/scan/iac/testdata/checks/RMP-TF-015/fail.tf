provider "aws" {
  region     = "eu-west-1"
  # want
  access_key = "AKIAIOSFODNN7EXAMPLE"
  # want
  secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
}

provider "azurerm" {
  features {}
  # want
  client_secret = "s3cr3t-value"
}
