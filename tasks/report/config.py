"""Configuration of the `report` stage."""

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    paper_size: str = "1.5B"
    """Model size whose paper scores (spec Tables 6/7) are shown next to ours for orientation."""
