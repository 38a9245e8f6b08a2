import sys

from betcycle.cli import main

sys.exit(main())
