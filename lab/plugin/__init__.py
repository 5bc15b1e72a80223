"""The pytest plugin's parts (the entry point module is :mod:`lab.pytest_plugin`).

* :mod:`lab.plugin.session` -- one lab session: the rig this process drives, its emulator, its Stb.
* :mod:`lab.plugin.evidence` -- console excerpt, deciding frame, clip and step log of a failure.
* :mod:`lab.plugin.filing` -- device faults into the RMA database, and their reproduction.
* :mod:`lab.plugin.summary` -- the end-of-session summary (new/known faults, infra errors).
"""

from lab.plugin.evidence import Evidence, collect_evidence
from lab.plugin.session import LabSession, assign_rig
from lab.plugin.summary import SessionSummary

__all__ = ["Evidence", "LabSession", "SessionSummary", "assign_rig", "collect_evidence"]
