"""nbgrader configuration of the course kit.

Layout (paths relative to the repository root)::

    solutions/<assignment>/<assignment>.ipynb   source: solutions and hidden tests
    notebooks/<assignment>/                     release: generated, committed
    submitted/<student>/<assignment>/           collected work (not in git)
    autograded/, feedback/, gradebook.db        nbgrader outputs (not in git)

``python -m autograder`` reads this file, so plain ``nbgrader`` commands run from
``course/`` and the kit's own commands agree on the layout. The batch grader
copies these settings into private per-worker course folders and adds its own
execution, sandbox and feedback steps (see ``autograder/grading``).
"""

import os

c = get_config()  # noqa: F821 - provided by traitlets when this file is loaded

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

c.CourseDirectory.root = REPO_ROOT
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(REPO_ROOT, "gradebook.db")
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "*.egg-info", ".DS_Store"]

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading: restore deleted or re-tagged test cells instead of skipping them,
# and keep per-cell time and output bounded.
c.OverwriteCells.add_missing_cells = True
c.Execute.timeout = 300
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100

# Feedback: nbgrader's own pages show hidden tests and the traceback lines that quote
# them; RedactHiddenTests removes both (it reads the hidden regions from the gradebook).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "autograder.grading.feedback.RedactHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
