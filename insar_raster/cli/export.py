"""`insar-raster export` (placeholder until its issue lands)."""


def add_parser(subparsers, parents):
    p = subparsers.add_parser("export", parents=parents, help="(not yet implemented)")
    p.set_defaults(func=_run)


def _run(args):
    raise NotImplementedError("'export' is not implemented yet")
