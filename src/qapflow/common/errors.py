"""The project's error types: each names the file, field or layer at fault."""


class QapflowError(Exception):
    """Base class: an error a user can act on; the CLI prints it without a traceback."""


class DataFormatError(QapflowError):
    """A data file is missing, truncated, of the wrong schema or holds bad values."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DownloadError(QapflowError):
    """A download failed (offline, bad checksum, server error)."""
