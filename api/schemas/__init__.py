"""Response and request schemas, one module per feature (the router of the same name)."""
