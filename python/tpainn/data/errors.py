"""The one exception type of the data package."""


class DataError(ValueError):
    """A dataset file is missing, malformed, or fails its checksum.

    The message names the file (and the line or frame where that is known) and what is wrong, so a
    user can fix the data without reading a traceback.
    """
