# Account-wide guard rails, applied once per account (from staging's configuration): every new EBS volume
# in the region is encrypted even if whoever creates it forgets (the EBS CSI driver's volumes included), and
# no S3 bucket in the account can be made public, whatever its own settings say.

resource "aws_ebs_encryption_by_default" "this" {
  enabled = true
}

resource "aws_ebs_default_kms_key" "this" {
  count = var.ebs_default_kms_key_arn == null ? 0 : 1

  key_arn = var.ebs_default_kms_key_arn
}

resource "aws_s3_account_public_access_block" "this" {
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
