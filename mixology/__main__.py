import sys

from mixology.cli import main

sys.exit(main())
