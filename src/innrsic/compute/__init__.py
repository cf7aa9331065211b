"""The machine: CPU features, threads, cost models."""
