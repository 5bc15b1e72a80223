"""Impairment of a rig's link: the per-packet engine, the userspace bridge, netem, and the Shaper."""

from lab.network.impair.engine import Impairment
from lab.network.impair.netem import NetemBackend, netem_args, netem_available
from lab.network.impair.shaper import Shaper, pick_backend
from lab.network.impair.tbf import TbfBackend, rate_only, tbf_args
from lab.network.impair.userspace import UserspaceBridge

__all__ = [
    "Impairment",
    "NetemBackend",
    "Shaper",
    "TbfBackend",
    "UserspaceBridge",
    "netem_args",
    "netem_available",
    "pick_backend",
    "rate_only",
    "tbf_args",
]
