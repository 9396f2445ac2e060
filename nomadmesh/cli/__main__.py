"""`python -m nomadmesh.cli`."""

from nomadmesh.cli import main

main()
