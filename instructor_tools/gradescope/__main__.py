import sys

from instructor_tools.gradescope.build import main

sys.exit(main())
