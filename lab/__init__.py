"""stblab: test-lab automation for IPTV/OTT set-top boxes.

Public face of the package; subpackages (``lab.drivers``, ``lab.video``, ``lab.network``,
``lab.rma``, ``lab.emulator``, ``lab.firmware``) export their own names.
"""

from lab.errors import DeviceFault, InfraError, RigFileError, TestError

__all__ = ["DeviceFault", "InfraError", "RigFileError", "TestError", "__version__"]
__version__ = "0.1.0"
