"""``python -m instructor_tools.grade``: see instructor_tools/grade/cli.py."""
import sys

from instructor_tools.grade.cli import main

sys.exit(main())
