"""Infrastructure as code read as data: Terraform files (python-hcl2) for the policy engine and the AWS tools."""
