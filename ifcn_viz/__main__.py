import sys

from ifcn_viz.cli import main

sys.exit(main())
