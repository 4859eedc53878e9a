"""uz verification environment (cocotb + pyuvm)."""
