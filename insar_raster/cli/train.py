"""`insar-raster train` (placeholder until its issue lands)."""


def add_parser(subparsers, parents):
    p = subparsers.add_parser("train", parents=parents, help="(not yet implemented)")
    p.set_defaults(func=_run)


def _run(args):
    raise NotImplementedError("'train' is not implemented yet")
