"""Helper library for the a2-cnn assignment (colourization and segmentation).

Students import these modules from the notebook; the autograder imports its own
pristine copy of them, so nothing here should be edited in a submission.
"""
