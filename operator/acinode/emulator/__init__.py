"""An ARM-compatible Azure Container Instances emulator (see ``app``). Imports nothing else from acinode."""
