"""One module per gradient-masking check; `base` defines `Check` and the registry. ``tempscale.audit`` imports each
check module, which registers it."""
