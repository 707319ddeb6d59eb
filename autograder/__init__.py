"""autograder: the judging half of the course kit.

- ``autograder.checks``: check functions that graded notebook cells call. They
  compare student code with a reference computed at grade time on the same inputs,
  device and dtype, and fail with a message that says what was expected.
- ``autograder.grading``: the batch grader that drives nbgrader (sandboxed kernels,
  limits, tamper detection, parallel workers, leak-free feedback).

Command line (see ``python -m autograder --help``)::

    python -m autograder release example
    python -m autograder grade --assignment example --submissions submitted --out out/grades
    python -m autograder validate notebooks/example/example.ipynb

Importing this package is cheap: torch is only imported by ``autograder.checks``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
