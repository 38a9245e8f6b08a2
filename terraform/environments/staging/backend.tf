# Remote state: S3 with DynamoDB locking. Literal values on purpose: Terraform allows no variables here,
# and `betcycle state bootstrap --env staging` reads these names to create the bucket and the table before
# the first `terraform init` (docs/infrastructure.md, "Bootstrap order"). main.tf's module "state" names
# the same two resources; tests/test_terraform_tree.py keeps them equal.
terraform {
  backend "s3" {
    bucket         = "example-org-betcycle-tfstate-staging"
    key            = "staging/terraform.tfstate"
    region         = "eu-west-1"
    dynamodb_table = "betcycle-tflock-staging"
    encrypt        = true
  }
}
