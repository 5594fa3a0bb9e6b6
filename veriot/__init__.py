"""veriot: trustworthy IoT data.

Signed device readings go into a verifiable Merkle log (RFC 9162), whose roots are
anchored on an EVM chain; streaming detectors score the readings; contracts act on
proven data. See README.md for the tour and docs/ for the wire formats.
"""

__version__ = "0.1.0"
