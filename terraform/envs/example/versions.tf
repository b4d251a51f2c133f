terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # The state holds generated secrets (Redis AUTH token, API secret, database
  # password). Keep it in an encrypted, versioned, access-restricted backend, e.g.:
  #
  # backend "s3" {
  #   bucket       = "<state-bucket>"
  #   key          = "ward/<environment>/terraform.tfstate"
  #   region       = "<region>"
  #   encrypt      = true
  #   kms_key_id   = "<state KMS key ARN>"
  #   use_lockfile = true
  # }
}

provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]

  default_tags {
    tags = {
      Application        = "ward"
      Environment        = var.environment
      DataClassification = "PHI"
      ManagedBy          = "terraform"
    }
  }
}
