"""Run the command line as `python -m ufstats`."""

from .cli import main

main()
