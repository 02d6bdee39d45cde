"""`python -m engine`: one sub-command module per area (datasets, networks, train, evaluate,
jobs); main.py assembles them."""
