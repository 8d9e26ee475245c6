"""python -m instructor_tools.release: see instructor_tools.release.cli."""
import sys

from .cli import main

sys.exit(main())
