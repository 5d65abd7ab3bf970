"""`python -m deploy.cli` is `lindungi`."""

from deploy.cli import main

main()
