"""``python -m apps``: serve the web demo (the same as ``dqa demo``)."""
import argparse
import logging
import sys

from apps.app import run
from apps.options import add_arguments

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = add_arguments(argparse.ArgumentParser(prog="python -m apps", description=__doc__))
    sys.exit(run(parser.parse_args()))
