"""One module per `betcycle` verb; each exposes `run_*` functions the CLI dispatcher calls."""
