import sys

from winworkers.cli import main

sys.exit(main())
