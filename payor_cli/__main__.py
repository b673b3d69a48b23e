"""`python -m payor_cli`, the same as the `payor` command."""

from payor_cli.cli import main

main()
