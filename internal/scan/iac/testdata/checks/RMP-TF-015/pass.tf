provider "aws" {
  region  = "eu-west-1"
  profile = "deploy"
}

provider "azurerm" {
  features {}
  client_secret = var.client_secret
}

provider "google" {
  credentials = file("account.json")
}
