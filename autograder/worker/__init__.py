"""The worker half of the grader: the only grader code a sandboxed process can see.

A worker runs a submission's cells in notebook order and, where the grader asks, *probes* the student's
definitions: builds models, records what they compute on inputs it is given, calls the student's Part C functions
on stand-in models. It returns data (tensors as safetensors, plain facts as JSON) and never a verdict: it holds no
expected value, threshold, hidden test or solution. The parent (``autograder/verify``, ``autograder/checks``)
decides every check from that data, re-deriving what it can. Modules here that the parent also uses
(``inputs``, ``marks``, ``vocabulary``, ``tiny_deeplab``) must stay free of anything a student may not see.
"""
