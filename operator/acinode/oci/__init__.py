"""OCI registries: what acinode reads of an image before ACI runs it (its config)."""
