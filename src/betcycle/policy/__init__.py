"""Stage 3, policy: load policy files and waivers, and evaluate their rules against resources."""
