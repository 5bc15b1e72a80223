"""Warranty verdicts for returned devices: evidence, versioned rules, and the check flow."""

from lab.warranty.rules import RULESET_VERSION, Decision, Findings, Indicator, Verdict, decide

__all__ = ["RULESET_VERSION", "Decision", "Findings", "Indicator", "Verdict", "decide"]
