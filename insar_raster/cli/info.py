"""`insar-raster info` (placeholder until its issue lands)."""


def add_parser(subparsers, parents):
    p = subparsers.add_parser("info", parents=parents, help="(not yet implemented)")
    p.set_defaults(func=_run)


def _run(args):
    raise NotImplementedError("'info' is not implemented yet")
