"""The `hma` command's subcommands (see hma_ros/cli/main.py)."""


class CliError(Exception):
    """A user-facing error: printed as one clear message, exit status 2."""
