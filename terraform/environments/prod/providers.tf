# Every resource this configuration creates carries the required tags (docs/infrastructure.md, "Tags");
# the cost report groups spend by `environment`, and the Terraform policies check these four.
provider "aws" {
  region = "eu-west-1"

  default_tags {
    tags = {
      environment = "prod"
      owner       = "team-platform"
      cost-center = "platform"
      managed-by  = "terraform"
    }
  }
}
