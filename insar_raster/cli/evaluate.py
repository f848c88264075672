"""`insar-raster evaluate` (placeholder until its issue lands)."""


def add_parser(subparsers, parents):
    p = subparsers.add_parser("evaluate", parents=parents, help="(not yet implemented)")
    p.set_defaults(func=_run)


def _run(args):
    raise NotImplementedError("'evaluate' is not implemented yet")
