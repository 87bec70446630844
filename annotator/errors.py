class AnnotatorError(Exception):
    """A problem with the user's input or setup. Its message is one line that says what to do."""
