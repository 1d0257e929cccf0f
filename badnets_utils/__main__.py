import sys

from badnets_utils.tools.cli import main

if __name__ == "__main__":  # not when a worker process of a sweep imports it
    sys.exit(main())
