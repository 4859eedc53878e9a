import sys
from pathlib import Path

# The cocotb test modules and their shared case lists live in tests/rtl.
sys.path.insert(0, str(Path(__file__).parent / "rtl"))
