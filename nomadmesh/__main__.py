"""`python -m nomadmesh`."""

from nomadmesh.cli import main

main()
