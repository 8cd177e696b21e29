"""`python -m duplex` is `duplex-chat`."""

from duplex.cli import main

main()
