"""Stage 4, validate: read manifests, check them against Kubernetes and CRD schemas, cross-check references, run policies."""
