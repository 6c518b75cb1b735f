import sys

from gmp.cli import main

sys.exit(main())
