"""`python -m hopper ...` is `hopper-py ...`."""

from .cli import main

main()
