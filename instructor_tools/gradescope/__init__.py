"""The grader on Gradescope: ``make gradescope`` writes release/gradescope/autograder.zip.

Modules:

- ``build``           the zip: setup.sh and run_autograder at its root (from ``templates/``),
                      the course (grader with hidden tests and rubric, student_tools, the
                      cs231n package, both notebooks, the sanitizer, requirements.txt,
                      pyproject.toml, the CIFAR-10 installer) and ``gradescope.json``
                      (the options it was built with)
- ``run_autograder``  what Gradescope runs for each submission: find the submission in
                      /autograder/submission (the zip, or its files unpacked), grade it with
                      ``instructor_tools.grade`` (the same grader, hidden tests and rubric as
                      ``make grade``) and write /autograder/results/results.json

See instructor_tools/grade/README.md, section "Gradescope".
"""

# Where setup.sh puts the virtual environment and (optionally) CIFAR-10 on the image:
# outside /autograder/source, which setup.sh makes readable by root only, while the
# sandboxed code (an unprivileged uid) must run this Python and read the data.
PREFIX = "/opt/cs231n-gradescope"
DATASETS = PREFIX + "/datasets/cifar-10-batches-py"
# The options the zip was built with, at the root of /autograder/source.
CONFIG_NAME = "gradescope.json"
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
