"""The errors the workflow expects, one hierarchy under FlannelError: their messages name the file or key,
and the scripts print them as one line instead of a traceback (flannel.logs)."""


class FlannelError(Exception):
    """Base of every expected error."""


class ConfigError(FlannelError, ValueError):
    """A config value that cannot work; the message names the key."""


class DataError(FlannelError, ValueError):
    """Bad input data; the message names the file."""


class RecordingError(FlannelError, ValueError):
    """A recording that cannot be used as asked; the message names the file."""


class TrainingError(FlannelError, RuntimeError):
    """Training cannot go on (for example a non-finite loss); the message names the step."""


class AnalysisError(FlannelError, ValueError):
    """An analysis input that cannot be used; the message names the file."""


class SanityError(FlannelError, ValueError):
    """An input the sanity checks cannot read; the message names the file and the key."""


class ReproducibilityError(FlannelError, RuntimeError):
    """A reproducibility check failed; the message names the files, the first differing tensor and step."""


class ToolError(FlannelError, RuntimeError):
    """An external program a step needs is missing; the message names what to install."""
