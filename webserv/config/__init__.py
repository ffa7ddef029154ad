"""nginx-style configuration: lexer → directive table → typed model (load)."""

from .errors import ConfigError
from .load import load

__all__ = ["ConfigError", "load"]
