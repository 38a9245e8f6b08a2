# One ECR repository per app: scanned on push, immutable tags (<app>:<sha> means one image forever),
# encrypted, and a lifecycle policy so old images don't pile up. `betcycle registry ensure` creates a new
# app's repository from boto3 with exactly these settings (encryption, lifecycle rules and their
# descriptions, the app and owner tags), so neither undoes the other's settings; only the `managed-by` tag
# differs (docs/infrastructure.md, "ECR repositories: who owns what").

resource "aws_ecr_repository" "this" {
  for_each = var.repositories

  name                 = each.key
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  # AES256 like `registry ensure`: the encryption of a repository can't change without replacing it.
  encryption_configuration {
    encryption_type = "AES256"
  }

  tags = {
    app   = each.key
    owner = each.value
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each = var.repositories

  repository = aws_ecr_repository.this[each.key].name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "expire untagged images after ${var.untagged_expiry_days} days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.untagged_expiry_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "keep the newest ${var.keep_tagged_images} tagged images"
        selection = {
          tagStatus      = "tagged"
          tagPatternList = ["*"]
          countType      = "imageCountMoreThan"
          countNumber    = var.keep_tagged_images
        }
        action = { type = "expire" }
      },
    ]
  })
}
