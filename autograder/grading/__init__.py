"""The batch grader: nbgrader driven in-process with sandboxed kernels.

Modules, in the order a submission meets them:

- ``options``: :class:`GradeOptions`, course paths, per-worker nbgrader config;
- ``batch``: discovery, worker processes, watchdog, skip-if-graded;
- ``worker``: one private course folder + gradebook, ``Worker.grade(student)``;
- ``submission``: missing / corrupt / extra notebooks, tampered cells;
- ``executor`` + ``sandbox``: guarded execution, limits, private file view;
- ``integrity``: before/after snapshots of torch, the checks and IPython;
- ``feedback``: feedback HTML without hidden tests;
- ``results``: result files, ``grades.csv``, ``tests.csv``, ``tests.json``;
- ``release`` / ``validate``: student notebooks, single-notebook check.

Nothing here imports torch; student kernels do.
"""
