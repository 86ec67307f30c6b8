"""Lets `python -m kerasjobs` run the same CLI as the console script."""

from kerasjobs.jobs.cli import main

if __name__ == "__main__":
    main()
