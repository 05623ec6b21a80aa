"""acinode: serverless virtual nodes for Kubernetes, backed by Azure Container Instances."""

__version__ = "0.1.0"
