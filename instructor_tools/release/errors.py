"""The one error of the release builder."""


class ReleaseError(Exception):
    """The tree cannot be released; ``problems`` lists every reason found."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
