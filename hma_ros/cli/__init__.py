"""The `hma` command's subcommands (see hma_ros/cli/main.py)."""


class CliError(Exception):
    """A user-facing error: printed as one clear message, exit status 2."""


def options(cls, args):
    """A library options dataclass from parsed arguments of the same names, recording the command
    line in its `command` field (the checkpoint keeps it)."""
    import sys
    from dataclasses import fields

    names = [f.name for f in fields(cls) if f.name != "command"]
    return cls(**{n: getattr(args, n) for n in names}, command="hma " + " ".join(sys.argv[1:]))
