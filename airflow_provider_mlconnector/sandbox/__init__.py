"""A faithful local emulator of the six vendor APIs, with a control plane for faults and time.

See :mod:`.core` for the control plane and ``sandbox/<system>/`` for each emulator.
"""
