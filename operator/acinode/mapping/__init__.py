"""Pure mappings between Kubernetes objects and Azure Container Instances (no I/O, no clock, no logging)."""
