"""The grader: ``make grade SUBMISSIONS=<folder of zips> OUT=<folder>``.

Modules, one job each:

- ``cli``        the command line, the gradebook (grades.csv), shards and ``merge``
- ``grade``      one submission from zip to result: unpack, sandboxed run, judging, scoring
- ``unpack``     safe extraction of an untrusted zip (paths, symlinks, size caps, MANIFEST)
- ``sandbox``    bubblewrap / unshare / rlimits around one command
- ``worker``     the script that runs INSIDE the sandbox on the student's package
- ``notebooks``  static notebook checks, answers per question, nbval junit parsing
- ``rubric``     rubric.toml (points per graded item) read and validated
- ``feedback``   the per-submission HTML page
- ``hidden/``    hidden tests (inputs, judging) and the reference; never released,
                 never visible inside the sandbox
"""
