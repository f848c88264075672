import sys

from insar_raster.cli import main

sys.exit(main())
