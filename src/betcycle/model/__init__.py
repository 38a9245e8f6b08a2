"""Stage 1, the model: load and check the declarative input (betcycle.yaml, charts, apps, values files, YAML I/O, limits, findings)."""
