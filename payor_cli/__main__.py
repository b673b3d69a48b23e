"""`python -m payor_cli`, the same as the `payor` command."""

from .cli import main

main()
