"""`python -m acinode` is the same as the `acinode` console script."""

from acinode import cli

if __name__ == "__main__":
    raise SystemExit(cli.main())
