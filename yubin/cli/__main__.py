import sys

from yubin.cli.main import main

sys.exit(main())
