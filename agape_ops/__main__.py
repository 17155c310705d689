"""`python -m agape_ops`: the same command line as `agape-ops`."""

from agape_ops.cli import main

main()
