"""Hidden autograder for a2-cnn (never released to students)."""
