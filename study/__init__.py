"""The study: the paper's experiments run, judged and reported on top of the lesson (the top-level
files).

Run each as a module from the repository root, e.g. `python -m study.reproduce --quick`.
The lesson never imports this package; this package imports the lesson.
"""
