"""usage: python -m pytest_deploycheck COMMAND [--help]

What a deploy needs beside a pytest run:

    init [--url URL] [--env NAME]     write a first environments.yaml and suite that pass
    merge REPORTS... [--shards N]     one verdict from the gate reports of sharded runs
"""

from __future__ import annotations

import sys

COMMANDS = ("init", "merge")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        asked = bool(args) and args[0] in ("-h", "--help")
        print(__doc__, file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    if args[0] == "init":
        from .cli import init

        return init.main(args[1:])
    from .cli import merge

    return merge.main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
