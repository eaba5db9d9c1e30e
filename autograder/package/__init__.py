"""Autograder packages for the platforms where courses grade: one module per platform (``gradescope``), each with
the scripts the platform runs (``templates/``) and the code those scripts call on the platform's machine
(``gradescope_runtime``)."""
